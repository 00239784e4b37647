/**
 * Voids cached copies after a write made outside the API, from a shell: POSTs to a running
 * server's POST /cache/invalidate (docs/operations.md, Writes made outside the API), which checks
 * the names, invalidates every layer of every server on that Redis and answers what it voided.
 *
 *   npm run cache:invalidate -- Product:<id> [User:<id> …] [tag:catalog | tag:catalog:<category> …] [--url <base url>]
 *
 * The server's base URL: `--url`, else CACHE_INVALIDATE_URL, else http://127.0.0.1:4000. The key:
 * CACHE_INVALIDATION_KEY (as the server's), sent in `x-cache-invalidation-key`; never an argument,
 * so that it stays out of shell histories and process lists. Prints the server's JSON answer;
 * exits 0 when it voided, 1 when the server refused (the answer says why) or was unreachable, 2
 * on bad arguments.
 */

const USAGE = 'usage: npm run cache:invalidate -- Type:<id>… tag:catalog[:<category>]… [--url <base url>]  (key in CACHE_INVALIDATION_KEY)';

interface Invocation {
  url: string;
  body: { entities: { type: string; id: string }[]; tags: string[] };
}

/** Reads the arguments; throws a message for the usage line on anything it does not know. */
function parseArgs(args: readonly string[], env: NodeJS.ProcessEnv): Invocation {
  let url = env.CACHE_INVALIDATE_URL ?? 'http://127.0.0.1:4000';
  const entities: Invocation['body']['entities'] = [];
  const tags: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if (arg === '--url' || arg.startsWith('--url=')) {
      url = arg === '--url' ? (args[(i += 1)] ?? '') : arg.slice('--url='.length);
      if (!/^https?:\/\//.test(url)) throw new Error(`--url must be an http(s) base URL, got ${JSON.stringify(url)}`);
    } else if (arg.startsWith('tag:')) {
      tags.push(arg.slice('tag:'.length));
    } else if (/^[A-Za-z]+:.+$/.test(arg)) {
      const colon = arg.indexOf(':');
      entities.push({ type: arg.slice(0, colon), id: arg.slice(colon + 1) });
    } else {
      throw new Error(`not Type:<id>, tag:<tag> nor --url: ${JSON.stringify(arg)}`);
    }
  }
  if (entities.length + tags.length === 0) throw new Error('name at least one entity or tag');
  return { url: url.replace(/\/+$/, ''), body: { entities, tags } };
}

async function main(): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseArgs(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`cache:invalidate: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const key = process.env.CACHE_INVALIDATION_KEY;
  if (!key) {
    console.error(`cache:invalidate: set CACHE_INVALIDATION_KEY to the server's key\n${USAGE}`);
    return 2;
  }
  try {
    const res = await fetch(`${invocation.url}/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-cache-invalidation-key': key },
      body: JSON.stringify(invocation.body),
    });
    const text = await res.text();
    (res.ok ? console.log : console.error)(text);
    return res.ok ? 0 : 1;
  } catch (error) {
    console.error(`cache:invalidate: ${invocation.url} did not answer: ${(error as Error).message}`);
    return 1;
  }
}

process.exitCode = await main();
