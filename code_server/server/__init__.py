"""The user-code server: loads a user's module and serves its definitions over gRPC."""
