/**
 * graphql-lease-cache/apollo: the response cache in Apollo Server. `responseCachePlugin` stores
 * and serves whole responses; `responseFastPath`, an optional node/Express middleware before
 * Apollo, answers stored ones without Apollo's per-request work; `responseFront`, a `node:http`
 * listener, runs it before the server's routing. Share one `ResponseFlights` between them.
 */
export { responseCachePlugin, type ResponseCachePluginOptions, type StoredResponse } from './plugin.js';
export { responseFastPath, type ClaimedSession, type FastPathRequest, type ResponseFastPathOptions } from './fast-path.js';
export { replayedBody, responseFront, type FrontRequest, type ResponseFrontOptions } from './front.js';
export { ResponseFlights } from '../response/flights.js';
export { RESPONSE_STATS_NAME, type ExecutedResult, type ResponseCacheOptions, type ResponseOutcome } from '../response/cached-response.js';
export type { NotStoredReason, ResponseBudgetSettings } from '../response/budget.js';
export { cacheControlHeader, type CachePolicy } from '../response/stored.js';
