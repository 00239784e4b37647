import { haveVarnish, startVarnish, VARNISHD, type LocalVarnish } from '../../src/dev/varnish.js';

export { startVarnish, VARNISHD };

/** A varnishd running the shipped VCL (src/dev/varnish.ts). */
export type TestVarnish = LocalVarnish;

/**
 * Whether {@link VARNISHD} is there; the Varnish tests are skipped without it, except in CI
 * (.ci/run installs it), where its absence throws at import so that no Varnish test passes by skipping.
 */
export const HAVE_VARNISH = haveVarnish();
if (!HAVE_VARNISH && process.env.CI) {
  throw new Error(`${VARNISHD} not found: the Varnish tests need it (apt-get install -y varnish varnish-modules; .ci/run does it).`);
}
if (!HAVE_VARNISH) console.warn(`Skipping the Varnish tests: no ${VARNISHD} (apt-get install varnish varnish-modules).`);
