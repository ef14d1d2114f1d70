// Package keys owns the marketplace keys directory: a mounted Secret holding the KooGallery keys
// bound to the basic and kit interfaces (with the previous key of each while KooGallery's binding
// is rotated), the seller's Open API AK/SK and, optionally, the RSA private key that decrypts kit
// client secrets. Store loads it, keeps the last good set in memory, and reloads it when the files
// change, so a rotated Secret takes effect without a restart; file contents never appear in
// errors, logs or metrics. Its metrics (Metrics) count reloads and failures and time the last
// good read, so a rotation that never took effect can alert.
package keys
