// modproxy is a helper of scripts/installcheck, not part of credpool: it
// writes a module proxy directory from the repository's modules. It is a
// module of its own (and not in go.work) so that its dependency,
// golang.org/x/mod, never becomes one of the credpool modules'.
module modproxy

go 1.26.0

require golang.org/x/mod v0.41.0
