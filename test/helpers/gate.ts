/**
 * Holding code under test at a point the test chooses: `wait()` is awaited by that code (it marks the gate
 * reached, then waits), `reached` tells the test it got there, `open()` lets it go on. `settledWithin` tells
 * whether a promise settled within a time: a write still waiting on a lock stays pending.
 */
export interface Gate {
  reached: Promise<void>;
  open: () => void;
  wait: () => Promise<void>;
}

export function gate(): Gate {
  let arrived!: () => void;
  let open!: () => void;
  const reached = new Promise<void>((r) => (arrived = r));
  const opened = new Promise<void>((r) => (open = r));
  return {
    reached,
    open,
    wait: () => {
      arrived();
      return opened;
    },
  };
}

export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.finally(() => (done = true)).catch(() => undefined);
  await new Promise((r) => setTimeout(r, ms));
  return done;
}
