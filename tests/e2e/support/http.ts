// A thin JSON client over global fetch for e2e tests: every call answers status, headers and
// the parsed body, and is bounded in time so a hung service fails the test instead of hanging it.
export type Reply<T = any> = { status: number; headers: Headers; body: T; contentType: string };

export type Client = {
  readonly url: string;
  get<T = any>(path: string, headers?: Record<string, string>): Promise<Reply<T>>;
  post<T = any>(path: string, body: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  raw(path: string, init: RequestInit): Promise<Reply>;
};

export function client(url: string, timeoutMs = 10_000): Client {
  async function raw(path: string, init: RequestInit): Promise<Reply> {
    const res = await fetch(`${url}${path}`, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const contentType = res.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (/json/.test(contentType) && text.length > 0) body = JSON.parse(text);
    return { status: res.status, headers: res.headers, body, contentType };
  }
  return {
    url,
    raw,
    get: (path, headers = {}) => raw(path, { method: 'GET', headers }),
    post: (path, body, headers = {}) =>
      raw(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
  };
}
