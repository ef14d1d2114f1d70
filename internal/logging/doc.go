// Package logging owns the limit on how verbose the operator's loggers may be: beyond it,
// libraries that log through the logger in a request's context would log secrets.
package logging
