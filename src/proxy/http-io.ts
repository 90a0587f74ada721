// Reading request bodies with a size cap and a deadline, so a huge or slow body gets a clear
// OpenAI-shaped error (413 / 408) instead of a hung socket or node's bare status line.
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../shared/errors.js';

export function readBody(req: IncomingMessage, maxBytes: number, deadlineMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => finish(new GatewayError('request_timeout', `The request body did not arrive within ${deadlineMs} ms.`)), deadlineMs);
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) return finish(tooLarge(maxBytes));
      chunks.push(c);
    };
    const onEnd = () => finish(null);
    const onError = (err: Error) => finish(new GatewayError('aborted', 'The request body could not be read.', { cause: err }));
    const onAborted = () => finish(new GatewayError('aborted', 'The client went away while sending the body.'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError('request_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
