package web

// src/types.gen.ts is the TypeScript form of the Go types the hub serves;
// TestTypesGenerated fails when it differs from what the generator writes.
//go:generate go run ./gen src/types.gen.ts
