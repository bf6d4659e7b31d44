/**
 * The UI's route table: one entry per page of `parseRoute` (the URL space is drawn in paths.ts), each handled
 * by the module of its group. How a page is reached (`access`, methods) is said here and enforced in http.ts.
 */
import { HttpProblem, notFound, type RouteTable } from '../http.js';
import { healthz, staticFile } from './assets.js';
import { deleteTag } from './delete.js';
import { events } from './events.js';
import { image } from './image.js';
import { home, repositories } from './repositories.js';
import { repository } from './repository.js';
import { robots } from './robots.js';
import { login, logout } from './sign-in.js';
import { storage } from './storage.js';

export const ROUTES: RouteTable = {
  healthz,
  static: staticFile,
  login,
  logout,
  home,
  repos: repositories,
  repo: repository,
  image,
  delete: deleteTag,
  storage,
  robots,
  events,
  invalid: {
    access: 'session',
    handle: ({ route }) => {
      throw new HttpProblem({ status: 404, title: 'Not found', message: `${route.what}.` });
    },
  },
  unknown: {
    access: 'session',
    signedOut: 'not-found',
    handle: ({ app }) => {
      throw new HttpProblem(notFound('There is no page at this address.', app.paths));
    },
  },
};
