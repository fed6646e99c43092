"""The S3 gateway: a sans-IO core in a thin trio shell.

    service.py   serve_s3(): bind cfg.s3.listen (TLS optional), connection cap, drain on cancel
    http.py      h11 over trio: keep-alive, 100-continue, timeouts, header cap, bounded streaming
    app.py       one request -> route -> SigV4 -> operation; every failure becomes S3 XML here
    routing.py   path- and virtual-hosted-style addressing; method + subresource -> operation
    sigv4.py     Signature V4 (Authorization header and presigned query)
    chunked.py   aws-chunked decoding with chunk and trailer signature checks
    checksums.py Content-MD5 and x-amz-checksum-* (header or trailer), verified at finalize
    body.py      the request-body pipeline into the engine
    errors.py    the one table of S3 errors
    xmlio.py     XML out (string builders) and in (xml.etree, MalformedXML)
    objmeta.py   headers <-> metadata, tags, conditional requests, Range
    ops_*.py     operation handlers by area (bucket, object, list, multipart)

Compatibility choices, where AWS leaves room: any region in the credential scope is accepted
(one appliance serves every region name a client picks); header-auth requests with unsigned
x-amz-* headers are refused, as AWS does; SigV2 is not spoken.
"""
