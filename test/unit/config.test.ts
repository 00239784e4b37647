import { describe, expect, it } from 'vitest';
import { DEFAULT_CACHE_SETTINGS } from 'graphql-lease-cache';
import { ConfigError, configAreas, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('gives development defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ nodeEnv: 'development', port: 4000, seedOnStart: true, introspection: true, mongodbUri: undefined });
    expect(config.seedAdmin.email).toBe('admin@example.com');
  });

  it('names every bad variable and its value', () => {
    const attempt = () => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', LOG_LEVEL: 'loud' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/PORT: .*"eighty"/);
    expect(attempt).toThrow(/REDIS_URL: must start with redis:\/\//);
    expect(attempt).toThrow(/LOG_LEVEL/);
  });

  it('requires MONGODB_URI in production and turns off seeding and introspection there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/MONGODB_URI: is required when NODE_ENV=production/);
    const config = loadConfig({ NODE_ENV: 'production', MONGODB_URI: 'mongodb://db:27017/app' });
    expect(config).toMatchObject({ production: true, seedOnStart: false, introspection: false });
  });

  it('reads booleans and treats empty strings as unset', () => {
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false', PORT: '' }).introspection).toBe(false);
    expect(loadConfig({ PORT: '' }).port).toBe(4000);
  });

  it('reads the fleet lease: 1500 ms by default, and refuses one below 200 ms or that is no number', () => {
    expect(loadConfig({}).cacheFleetLeaseMs).toBe(1_500);
    expect(loadConfig({ CACHE_FLEET_LEASE_MS: '3000' }).cacheFleetLeaseMs).toBe(3_000);
    expect(() => loadConfig({ CACHE_FLEET_LEASE_MS: '100' })).toThrow(/CACHE_FLEET_LEASE_MS/);
    expect(() => loadConfig({ CACHE_FLEET_LEASE_MS: 'soon' })).toThrow(/CACHE_FLEET_LEASE_MS/);
  });

  it('reads the L1 settings: on by default with the package’s bytes and age; CACHE_L1=false is none', () => {
    expect(loadConfig({}).cache).toMatchObject({ l1MaxBytes: DEFAULT_CACHE_SETTINGS.l1MaxBytes, l1MaxAgeMs: 60_000 });
    expect(loadConfig({ CACHE_L1_MAX_BYTES: '1024', CACHE_L1_MAX_AGE_SECONDS: '5' }).cache).toMatchObject({
      l1MaxBytes: 1024,
      l1MaxAgeMs: 5_000,
    });
    expect(loadConfig({ CACHE_L1: 'false' }).cache.l1MaxBytes).toBe(0);
    expect(() => loadConfig({ CACHE_L1_MAX_BYTES: '0' })).toThrow(/CACHE_L1_MAX_BYTES/);
    expect(() => loadConfig({ CACHE_L1_MAX_AGE_SECONDS: '0' })).toThrow(/CACHE_L1_MAX_AGE_SECONDS/);
  });

  it('reads a write policy per type, with defaults, and refuses unknown types and policies', () => {
    expect(loadConfig({}).writePolicies).toEqual({ User: 'refresh', Product: 'refresh' });
    expect(loadConfig({ CACHE_WRITE_POLICIES: ' User = write-behind ' }).writePolicies).toEqual({
      User: 'write-behind',
      Product: 'refresh',
    });
    expect(() => loadConfig({ CACHE_WRITE_POLICIES: 'Order=refresh' })).toThrow(/CACHE_WRITE_POLICIES: must look like/);
    expect(() => loadConfig({ CACHE_WRITE_POLICIES: 'User=write-around' })).toThrow(/CACHE_WRITE_POLICIES/);
    expect(() => loadConfig({ WRITE_BEHIND_MAX_TRIES: '0' })).toThrow(/WRITE_BEHIND_MAX_TRIES/);
  });

  it('gives rate limits per window with defaults, and reads TRUST_PROXY as Express takes it', () => {
    expect(loadConfig({}).rateLimits).toEqual({
      loginWindowSeconds: 900,
      loginFailuresPerEmailAndIp: 5,
      loginFailuresPerEmail: 10,
      loginKnownAddressSeconds: 30 * 86_400,
      loginAttemptsPerIp: 100,
      signUpWindowSeconds: 3_600,
      signUpsPerIp: 20,
      sessionWindowSeconds: 86_400,
      sessionsPerUser: 50,
      viewsPerClientPerMinute: 120,
      viewDedupWindowSeconds: 60,
      invalidationsPerClientPerMinute: 60,
    });
    expect(loadConfig({}).metrics).toEqual({ port: null, host: '127.0.0.1' });
    expect(loadConfig({ NODE_ENV: 'production', MONGODB_URI: 'mongodb://db/x', HOST: '0.0.0.0' }).metrics).toEqual({
      port: 9464,
      host: '0.0.0.0',
    });
    expect(() => loadConfig({ LOGIN_MAX_FAILURES_PER_EMAIL: '0' })).toThrow(/LOGIN_MAX_FAILURES_PER_EMAIL/);
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toBe('loopback, 10.0.0.0/8');
    expect(() => loadConfig({ TRUST_PROXY: 'a b' })).toThrow(/TRUST_PROXY/);
  });
});

describe('configAreas', () => {
  it('builds the Fastly and Cloudflare purge URLs from their ids and requires their credentials', () => {
    expect(loadConfig({ PURGE_ADAPTER: 'fastly', FASTLY_SERVICE_ID: 's1', FASTLY_API_TOKEN: 'k' }).sharedCache.purge).toEqual({
      adapter: 'fastly',
      url: 'https://api.fastly.com/service/s1/purge',
      token: 'k',
    });
    const cloudflare = loadConfig({ PURGE_ADAPTER: 'cloudflare', CLOUDFLARE_ZONE_ID: 'z1', CLOUDFLARE_API_TOKEN: 't' });
    expect(cloudflare.sharedCache.purge?.url).toBe('https://api.cloudflare.com/client/v4/zones/z1/purge_cache');
    expect(() => loadConfig({ PURGE_ADAPTER: 'fastly', FASTLY_SERVICE_ID: 's1' })).toThrow(
      /FASTLY_API_TOKEN: is required when PURGE_ADAPTER=fastly/,
    );
    expect(() => loadConfig({ PURGE_ADAPTER: 'cloudflare', CLOUDFLARE_API_TOKEN: 't' })).toThrow(
      /CLOUDFLARE_ZONE_ID: is required when PURGE_ADAPTER=cloudflare/,
    );
  });

  it('names each variable in one area only, and takes the cache defaults from the package', () => {
    const variables = Object.values(configAreas).flatMap((area) => Object.keys(area.in.shape));
    expect(variables.length).toBeGreaterThan(60);
    expect(new Set(variables).size).toBe(variables.length);
    const { cache } = loadConfig({});
    expect(cache).toEqual({ ...DEFAULT_CACHE_SETTINGS, responses: true });
  });
});
