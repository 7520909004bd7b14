/**
 * @relavium/keys: local layers of the `KeyStore` tag (OS keychain, 0600 file,
 * environment) and the data-directory resolution the CLI shares.
 */
export * as DataDir from "./DataDir.js"
export * as KeyStores from "./KeyStores.js"
