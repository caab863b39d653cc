module github.com/sondehq/sonde

go 1.26.0
