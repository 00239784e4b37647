import { pino, type Logger } from 'pino';

export type { Logger };

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  level: string;
  /** Human-readable output (pino-pretty) instead of JSON lines; default false. */
  pretty?: boolean;
}

/** The process logger: JSON lines on stdout, or pretty output in development when pino-pretty is installed. */
export function createLogger(options: LoggerOptions): Logger {
  if (options.pretty) {
    return pino({
      level: options.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level: options.level });
}
