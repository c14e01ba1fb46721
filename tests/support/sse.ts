/**
 * The one Server-Sent Events reader of the tests (GET /api/events, in-process or through real
 * processes): fetch the stream and collect what arrives, parsed as the page's EventSource reads
 * it, until the server ends it or the test closes it.
 */

export interface SseMessage<T = unknown> {
  /** The `event:` field; "message" when the block has none. */
  event: string;
  /** The `data:` lines joined by "\n", parsed as JSON (every event of the API carries JSON). */
  data: T;
}

export interface EventStream {
  /** The response as soon as its headers arrived: the status and headers. */
  response: Response;
  /** Every message received so far, in order. */
  messages: SseMessage[];
  /** Every comment line (": heartbeat") received so far. */
  comments: string[];
  /** The raw text received so far: the stream as sent, or an error's JSON body. */
  text: () => string;
  /** The data of every message of `event` received so far, in order. */
  dataOf: <T>(event: string) => T[];
  /** Resolves when the body ends: "ended" when the server ended it, "aborted" when it was closed or broken. */
  ended: Promise<'ended' | 'aborted'>;
  /** Closes the connection (the server sees the client leave). */
  close: () => void;
}

/** Parses one block (the text between two blank lines) into its comments and its message, if any. */
function parseBlock(block: string): { comments: string[]; message?: SseMessage } {
  const comments: string[] = [];
  const data: string[] = [];
  let event = 'message';
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) comments.push(line);
    else if (line.startsWith('event: ')) event = line.slice('event: '.length);
    else if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
  }
  return data.length === 0 ? { comments } : { comments, message: { event, data: JSON.parse(data.join('\n')) as unknown } };
}

/** GET `url` as an event stream; resolves once the response's headers arrived. */
export async function openEventStream(url: string): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  let text = '';
  const ended = (async (): Promise<'ended' | 'aborted'> => {
    if (response.body === null) return 'ended';
    let pending = '';
    try {
      for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        pending += chunk;
        for (let split = pending.indexOf('\n\n'); split !== -1; split = pending.indexOf('\n\n')) {
          const parsed = parseBlock(pending.slice(0, split));
          pending = pending.slice(split + 2);
          comments.push(...parsed.comments);
          if (parsed.message !== undefined) messages.push(parsed.message);
        }
      }
      return 'ended';
    } catch {
      return 'aborted';
    }
  })();
  return {
    response,
    messages,
    comments,
    text: () => text,
    dataOf: <T>(event: string) => messages.filter((message) => message.event === event).map((message) => message.data as T),
    ended,
    close: () => {
      controller.abort();
    },
  };
}
