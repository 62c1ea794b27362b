import { z } from 'zod';

/**
 * A non-negative integer in a query string, written as plain decimal digits. `Number()` (and
 * z.coerce) also read `1e2`, `0x32`, `' 50'` and `''` (as 0) as integers, so `?step=0x32` named
 * step 50 and `?step=` step 0; a query parameter is outside input and gets the strict reading.
 */
export const queryInteger = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,14})$/, 'must be a non-negative integer in decimal digits')
  .transform(Number);
