// Package contract checks that the API does what its OpenAPI document says.
//
// Its test starts the sandbox (moto, stripe-mock, the portal; with its
// -small data) and runs Schemathesis, a contract fuzzer, against the
// sandbox's /api/v1 with a token holding every role: requests the
// document allows must not be refused, requests it forbids must be, every
// response must match its declared status codes, content type and schema,
// and none may be a server error. The fuzzer lives in its own virtual
// environment under .tools/ (`make tools`).
package contract
