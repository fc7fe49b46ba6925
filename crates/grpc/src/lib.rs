//! gRPC glue shared by both daemons: authentication interceptor, outbound credentials, status mapping, server bootstrap and shutdown.
