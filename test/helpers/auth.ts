/** The `Authorization` value of HTTP basic auth (RFC 7617) for a user and password. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
