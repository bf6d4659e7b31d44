/**
 * The X.509 library, always loaded after its `Reflect` metadata polyfill (its dependency injection needs one, and
 * ES modules evaluate imports in order): import `@peculiar/x509` only through this module.
 */
import 'reflect-metadata';

export * from '@peculiar/x509';
