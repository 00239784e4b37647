// The metric names a PromQL expression reads, and the registered metric family each belongs
// to: enough of PromQL's lexical structure to find the series selectors in a dashboard's
// queries, without a full parser. Free of the app, so unit tests can use it too.

/** PromQL's aggregation operators: `sum by (x) (…)` and `sum(…) by (x)` both name no metric. */
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);

/** PromQL's functions (Prometheus 3), and `start()` / `end()` of the `@` modifier. */
const FUNCTIONS = new Set([
  'abs',
  'absent',
  'absent_over_time',
  'acos',
  'acosh',
  'asin',
  'asinh',
  'atan',
  'atanh',
  'avg_over_time',
  'ceil',
  'changes',
  'clamp',
  'clamp_max',
  'clamp_min',
  'cos',
  'cosh',
  'count_over_time',
  'day_of_month',
  'day_of_week',
  'day_of_year',
  'days_in_month',
  'deg',
  'delta',
  'deriv',
  'double_exponential_smoothing',
  'exp',
  'floor',
  'histogram_avg',
  'histogram_count',
  'histogram_fraction',
  'histogram_quantile',
  'histogram_stddev',
  'histogram_stdvar',
  'histogram_sum',
  'holt_winters',
  'hour',
  'idelta',
  'increase',
  'info',
  'irate',
  'label_join',
  'label_replace',
  'last_over_time',
  'ln',
  'log10',
  'log2',
  'mad_over_time',
  'max_over_time',
  'min_over_time',
  'minute',
  'month',
  'pi',
  'predict_linear',
  'present_over_time',
  'quantile_over_time',
  'rad',
  'rate',
  'resets',
  'round',
  'scalar',
  'sgn',
  'sin',
  'sinh',
  'sort',
  'sort_by_label',
  'sort_by_label_desc',
  'sort_desc',
  'sqrt',
  'stddev_over_time',
  'stdvar_over_time',
  'sum_over_time',
  'tan',
  'tanh',
  'time',
  'timestamp',
  'vector',
  'year',
  'start',
  'end',
]);

/** Keywords that take a label list in parentheses: `by (le, op)`, `on (name)`, `group_left (x)`. */
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
/** Binary set operators, `bool`, and the number literals spelled as words. */
const OTHER_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'atan2', 'inf', 'nan']);

/**
 * The metric names that `expr` selects, as written (`foo_bucket`, not its family). Strings,
 * label matchers, range and subquery brackets, label lists (`by (…)`), `offset`/`@` modifiers,
 * numbers, functions, keywords and Grafana variables (`$__rate_interval`) are skipped; a
 * `{__name__="x"}` matcher counts as `x`. Throws on what it cannot check: a call of an unknown
 * function (a typo would hide a metric name), a metric chosen by a `__name__` regex, an
 * unterminated string or bracket.
 */
export function promqlMetricNames(expr: string): string[] {
  const names = new Set<string>();
  const src = expr.replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  let i = 0;
  const skipSpace = (): void => {
    while (i < src.length) {
      if (/\s/.test(src[i] ?? '')) i += 1;
      else if (src[i] === '#') while (i < src.length && src[i] !== '\n') i += 1;
      else break;
    }
  };
  const readString = (): string => {
    const quote = src[i];
    const start = ++i;
    while (i < src.length && src[i] !== quote) i += quote !== '`' && src[i] === '\\' ? 2 : 1;
    if (i >= src.length) throw new Error(`unterminated string in ${expr}`);
    return src.slice(start, i++);
  };
  const skipPast = (close: string): string => {
    const start = i;
    while (i < src.length && src[i] !== close) {
      if (src[i] === '"' || src[i] === "'" || src[i] === '`') readString();
      else i += 1;
    }
    if (i >= src.length) throw new Error(`no ${close} in ${expr}`);
    return src.slice(start, i++);
  };
  const nextWord = (): string | undefined => {
    const save = i;
    skipSpace();
    const word = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(src.slice(i))?.[0];
    i = save;
    return word;
  };
  const nextChar = (): string | undefined => {
    const save = i;
    skipSpace();
    const char = src[i];
    i = save;
    return char;
  };
  while (true) {
    skipSpace();
    if (i >= src.length) break;
    const char = src[i] ?? '';
    if (char === '"' || char === "'" || char === '`') {
      readString();
    } else if (char === '{') {
      i += 1;
      const matchers = skipPast('}');
      for (const match of matchers.matchAll(/__name__\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`([^`]*)`)/g)) {
        if (match[1] !== '=') throw new Error(`a __name__ ${match[1]} matcher names no metric that can be checked: ${expr}`);
        names.add(match[2] ?? match[3] ?? match[4] ?? '');
      }
    } else if (char === '[') {
      i += 1;
      skipPast(']');
    } else if (/[0-9.]/.test(char)) {
      // A number (1, 0.99, 1e3, 0x1f) or a duration (5m, 1h30m): never a name.
      i += /^(?:0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*)/.exec(src.slice(i))?.[0].length || 1;
    } else if (/[a-zA-Z_:]/.test(char)) {
      const word = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(src.slice(i))?.[0] ?? char;
      i += word.length;
      if (LABEL_LIST_KEYWORDS.has(word)) {
        if (nextChar() === '(') {
          skipSpace();
          i += 1;
          skipPast(')');
        }
      } else if (word === 'offset') {
        skipSpace();
        if (src[i] === '-') i += 1;
        i += /^[0-9a-z.]+/.exec(src.slice(i))?.[0].length ?? 0;
      } else if (OTHER_KEYWORDS.has(word.toLowerCase())) {
        // an operator or a number
      } else if (AGGREGATIONS.has(word) && (nextChar() === '(' || ['by', 'without'].includes(nextWord() ?? ''))) {
        // sum (…), sum by (…) (…)
      } else if (nextChar() === '(') {
        if (!FUNCTIONS.has(word)) throw new Error(`unknown PromQL function ${word}( in ${expr}`);
      } else {
        names.add(word);
      }
    } else {
      i += 1;
    }
  }
  return [...names];
}

/** The metric families of Prometheus exposition text, by name: their `# TYPE` (counter, gauge, histogram, summary, untyped). */
export function metricFamilies(exposition: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) if (name && type) families.set(name, type);
  return families;
}

/**
 * The registered family a series name belongs to: itself, or for `<h>_bucket` a histogram `<h>`
 * and for `<h>_sum` / `<h>_count` a histogram or summary `<h>`; undefined when there is none.
 */
export function familyOf(series: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(series)) return series;
  const suffixes: [string, string[]][] = [
    ['_bucket', ['histogram']],
    ['_sum', ['histogram', 'summary']],
    ['_count', ['histogram', 'summary']],
  ];
  for (const [suffix, types] of suffixes) {
    if (!series.endsWith(suffix)) continue;
    const base = series.slice(0, -suffix.length);
    if (types.includes(families.get(base) ?? '')) return base;
  }
  return undefined;
}
