// Command koosim is a KooGallery stand-in for merchants: it signs protocol messages, encrypts
// credentials, sends activities to a production URL, runs whole lifecycles and bounded load, and
// serves the Query Order and usage push open APIs. The command forms are a stable interface that
// scripts depend on; the logic lives in testable functions over an app value. Run "koosim help".
package main
