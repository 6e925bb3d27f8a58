// A running konami as the first run and the demo reach it: its address on
// this machine, and a token for an API key.

/** konami's address as a person on this machine opens it (an address that listens everywhere is reached on loopback). */
export function webAddress(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/** A token for the API key (Kazoo's api_auth), or the status konami refused it with. */
export async function signIn(web: string, apiKey: string): Promise<{ token: string } | { status: number }> {
  const res = await fetch(`${web}/v1/api_auth`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { api_key: apiKey } }),
  });
  if (!res.ok) return { status: res.status };
  return { token: ((await res.json()) as { auth_token: string }).auth_token };
}
