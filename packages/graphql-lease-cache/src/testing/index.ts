/**
 * graphql-lease-cache/testing: what tests of the cache, and of stores and targets written for
 * it, need besides a real Redis.
 *
 *   lease-store-contract.ts   describeLeaseStoreContract: the LeaseStore contract, for any store
 *   fault-injecting-store.ts  FaultInjectingStore: a store that fails, slows or holds calls on demand
 *   in-memory-source.ts       InMemorySource: versioned documents in a Map, with a counted batch load
 *   in-memory-target.ts       InMemoryWriteTarget: the write-behind worker's target over that source
 */
export {
  describeLeaseStoreContract,
  type ContractRunner,
  type LeaseStoreContractOptions,
  type LeaseStoreUnderTest,
} from './lease-store-contract.js';
export {
  FaultInjectingStore,
  InjectedFaultError,
  LEASE_STORE_OPERATIONS,
  type LeaseStoreOperation,
  type OperationCounts,
} from './fault-injecting-store.js';
export { InMemorySource } from './in-memory-source.js';
export { InMemoryWriteTarget, type InMemoryWriteTargetOptions, type WritableDocument } from './in-memory-target.js';
// What a test reads of a stored value: its version and its codec payload (decode with createCodec).
export { payloadOf, versionOf } from '../redis-store.js';
export { InMemoryIntentLog } from '../fleet/intents.js';
