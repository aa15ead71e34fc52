// Package modeltest holds fake vision model servers for tests: they speak
// the real wire protocol of each provider, so regscribe's real client
// libraries are exercised, and they check what they receive.
//
// Only tests and the benchmark import it.
package modeltest
