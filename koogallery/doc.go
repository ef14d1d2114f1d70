// Package koogallery owns the Huawei Cloud KooGallery SaaS protocol as the merchant sees it: the
// typed requests of every basic activity and kit sync with their validation, the result codes,
// the replies and their JSON form, request verification (URL signature, kit headers, V1
// authToken) with key rotation, a timestamp window and a bounded nonce replay cache, reply
// signing with the Body-Sign header, and the credential encryption of appInfo and the kit client
// secret. It has no knowledge of Kubernetes; the webhook and the simulator are both built on it.
package koogallery
