import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

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

  it('reads a write policy per type, with defaults, and refuses unknown types and policies', () => {
    expect(loadConfig({}).writePolicies).toEqual({ User: 'refresh', Product: 'invalidate' });
    expect(loadConfig({ CACHE_WRITE_POLICIES: ' User = write-behind ' }).writePolicies).toEqual({
      User: 'write-behind',
      Product: 'invalidate',
    });
    expect(() => loadConfig({ CACHE_WRITE_POLICIES: 'Order=refresh' })).toThrow(/CACHE_WRITE_POLICIES: must look like/);
    expect(() => loadConfig({ CACHE_WRITE_POLICIES: 'User=write-around' })).toThrow(/CACHE_WRITE_POLICIES/);
    expect(() => loadConfig({ WRITE_BEHIND_MAX_TRIES: '0' })).toThrow(/WRITE_BEHIND_MAX_TRIES/);
  });
});
