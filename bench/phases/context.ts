/** The one bench user; its bcrypt hash is in the htpasswd file both registries read. */
export interface Credentials {
  user: string;
  password: string;
}
