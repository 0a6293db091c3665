module confd-rs/oracle

go 1.19
