"""What one request may carry through API Gateway and Lambda (the CDK app, the app factory and the tests use it)."""

# The largest body one Lambda invocation can carry: the invoke takes 6,291,456 bytes of event, in
# which API Gateway base64-encodes the body (every media type is binary, see family_api.py); 64 KiB
# are left for the headers and request context. API Gateway itself lets bodies through up to 10 MB.
LAMBDA_BODY_MAX_BYTES = (6_291_456 - 65_536) * 3 // 4
