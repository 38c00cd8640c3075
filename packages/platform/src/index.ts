export * from './config.js';
export * from './logger.js';
export * from './shutdown.js';
export * from './api-keys.js';
