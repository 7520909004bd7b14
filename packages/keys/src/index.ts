/**
 * @relavium/keys: local layers of the `KeyStore` tag (OS keychain, 0600 file,
 * environment), the data-directory resolution the CLI shares, and the
 * `KnownSecrets` layer that loads the stored key values for scrubbing.
 */
export * as DataDir from "./DataDir.js"
export * as KeyStores from "./KeyStores.js"
export * as KeySecrets from "./KeySecrets.js"
