import type { CliContext } from '../context.js';
import type { DockerEngine } from '../../docker/engine.js';
import { LazyEngine } from '../../docker/lazy-engine.js';

/** How the stack commands get an engine; tests pass a factory returning a fake. */
export type EngineFactory = (ctx: CliContext) => DockerEngine;

export const defaultEngineFactory: EngineFactory = (ctx) => new LazyEngine(ctx.env);
