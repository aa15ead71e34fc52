// Package embedded runs the servers `regscribe up` and the tests carry in
// process: a NATS server with JetStream, and a CNCF Distribution registry
// whose notifications go to the notifier.
//
// It only starts and stops servers; it knows nothing of jobs or photos.
package embedded
