// What happens at the edges of HTTP, before a route runs: a body over the limit and a request
// Node's parser refuses. Both are answered as problem+json like every other refusal.
//
// A 413 sent while the client is still sending, followed by closing the connection, reaches
// only some clients: the others are still writing when the socket goes and see a broken pipe
// (EPIPE) or a reset instead of the answer. So the rest of the body is read and thrown away
// first, up to a bound (DRAIN_MAX_BYTES or DRAIN_MAX_MS, whichever comes first), and the 413
// goes out after it; only a client sending more than that can still see the connection cut.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem, sendProblem, type Problem } from './problem.js';

export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
export const DRAIN_MAX_MS = 10_000;

/**
 * Reads and discards what is left of a request's body. Resolves true when the client has sent
 * it all, false when the bound was reached or the client went away first.
 */
export function drainRequestBody(raw: IncomingMessage, bounds = { maxBytes: DRAIN_MAX_BYTES, maxMs: DRAIN_MAX_MS }): Promise<boolean> {
  if (raw.complete || raw.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let read = 0;
    const finish = (whole: boolean) => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onFail);
      raw.off('close', onClose);
      if (!whole) raw.pause();
      resolve(whole);
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > bounds.maxBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onFail = () => finish(false);
    const onClose = () => finish(raw.complete);
    const timer = setTimeout(() => finish(false), bounds.maxMs);
    timer.unref();
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('error', onFail);
    raw.once('close', onClose);
    raw.resume();
  });
}

/** The 413, sent once the rest of the body is drained (or the bound reached); the connection then closes. */
export async function refuseBodyTooLarge(request: FastifyRequest, reply: FastifyReply, limit: number): Promise<FastifyReply> {
  const whole = await drainRequestBody(request.raw);
  if (!whole) request.log.info({ limitBytes: limit }, 'body over the limit not drained within its bound; the connection is closed after the 413');
  return sendProblem(reply, problem(413, 'body_too_large', `the request body is larger than the limit of ${limit} bytes`), { connection: 'close' });
}

function clientErrorProblem(err: NodeJS.ErrnoException): Problem {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem(408, 'request_timeout', 'the request was not received in time');
    case 'HPE_HEADER_OVERFLOW':
      return problem(431, 'headers_too_large', 'the request headers are larger than the limit');
    // The body ended before the announced length, or the length header is malformed or repeated.
    case 'HPE_INVALID_EOF_STATE':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return problem(400, 'invalid_content_length', 'the body is not as long as its Content-Length says, or Content-Length is malformed', [{ path: 'Content-Length', message: 'must be the length of the body in bytes' }]);
    default:
      return problem(400, 'bad_request', 'the request is not valid HTTP');
  }
}

/** Fastify's clientErrorHandler: a request Node's HTTP parser refused, answered as problem+json, then closed. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const p = clientErrorProblem(err);
    const body = JSON.stringify(p);
    socket.write(
      `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
