// Package openapi is the client side of the KooGallery open APIs a merchant calls: Query Order,
// signed with Huawei APIG's SDK-HMAC-SHA256 AK/SK scheme, and usage push, signed with the seller
// key. It owns the wire schema of orders, the typed MKT.* errors with their retry classification,
// and bounded retries with backoff only where repeating a call is safe.
package openapi
