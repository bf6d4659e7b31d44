/** `/r/<name>/-/image/<reference>`: an image, index or artifact by tag or digest, with its referrers. */
import { imageDetails } from '../image-details.js';
import { HttpProblem, send, unknownReference, type RouteEntry, type RouteOf } from '../http.js';
import { RegistryNotFoundError } from '../registry-client.js';
import { imagePage } from '../views/image.js';

export const image: RouteEntry<RouteOf<'image'>> = {
  access: 'session',
  signedOut: 'public',
  handle: async ({ app, res, route, data, view }) => {
    const details = await imageDetails(data, route.name, route.reference).catch((err: unknown) => {
      if (err instanceof RegistryNotFoundError)
        throw new HttpProblem(unknownReference(route.name, route.reference, app.paths));
      throw err;
    });
    send(res, 200, imagePage(view, details));
  },
};
