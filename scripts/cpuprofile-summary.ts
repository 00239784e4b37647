// The top self and total times of a V8 CPU profile (.cpuprofile), as text.
// `npx tsx scripts/cpuprofile-summary.ts FILE [N]` prints it for a saved profile.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
/** The shape of a V8 CPU profile, as the inspector returns it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

/** A table of the `top` functions by self time and by total time (a function counted once per stack), in % of samples. */
export function summarize(profile: CpuProfile, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const samples = profile.samples ?? [];
  const name = (n: ProfileNode) => {
    const file = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench|scripts)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const stackCache = new Map<number, string[]>();
  const stackOf = (id: number): string[] => {
    const cached = stackCache.get(id);
    if (cached) return cached;
    const names: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (node) names.push(name(node));
    }
    const unique = [...new Set(names)];
    stackCache.set(id, unique);
    return unique;
  };
  for (const id of samples) {
    const node = byId.get(id);
    if (!node) continue;
    self.set(name(node), (self.get(name(node)) ?? 0) + 1);
    for (const n of stackOf(id)) total.set(n, (total.get(n) ?? 0) + 1);
  }
  const pct = (n: number) => `${((100 * n) / Math.max(samples.length, 1)).toFixed(1).padStart(5)}%`;
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `${pct(v)}  ${k}`)
      .join('\n');
  return `samples: ${samples.length}\n-- self --\n${rows(self)}\n-- total --\n${rows(total)}`;
}

interface AllocationNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocationNode[];
}

/** The `top` functions by bytes allocated (self), from a sampling heap profile, in % of the sampled bytes. */
export function summarizeAllocations(profile: { head: AllocationNode }, top = 20): string {
  const bytes = new Map<string, number>();
  let total = 0;
  const visit = (node: AllocationNode) => {
    const file = node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench|scripts)\//, '$1/');
    const name = `${node.callFrame.functionName || '(anonymous)'} ${file}:${node.callFrame.lineNumber + 1}`;
    bytes.set(name, (bytes.get(name) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  const rows = [...bytes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${((100 * v) / Math.max(total, 1)).toFixed(1).padStart(5)}%  ${k}`);
  return `-- allocated (sampled) --\n${rows.join('\n')}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpuprofile-summary FILE [N]');
  console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top ?? 30)));
}
