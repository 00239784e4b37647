import { z } from 'zod';

/** A boolean variable: true, 1 or yes; false, 0 or no (anything else is refused). */
export const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/** A TCP port number, 0 to 65535 (0: any free one). */
export const port = z.coerce.number().int().min(0).max(65_535);
