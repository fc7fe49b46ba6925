//! The product's JSON log layout (logstash-logback-encoder style) and console output, as a tracing layer.
