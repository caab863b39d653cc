package bpf

// Regenerate with `make generate` (Debian's clang 14: apt-get install -y clang llvm libbpf-dev).
// The output is committed so that go build and go test need no clang.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type config -type counter -type config_flag capture capture.bpf.c
