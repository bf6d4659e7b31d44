import { type Browser, type LaunchOptions, chromium } from 'playwright-core';

import { requirePeer } from './peers.js';

/** Debian's Chromium; playwright never downloads a browser here. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches headless Debian Chromium through playwright-core. Close it with `browser.close()`. */
export async function launchChromium(options: Omit<LaunchOptions, 'executablePath'> = {}): Promise<Browser> {
  requirePeer('chromium');
  return chromium.launch({
    timeout: 60_000,
    ...options,
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
  });
}
