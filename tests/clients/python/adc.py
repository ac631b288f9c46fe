# SPDX-License-Identifier: Apache-2.0
# The Cloud SDK's bundled google-auth with no configuration, as an application
# on GKE would use it: google.auth.default() must find the metadata server by
# itself. Usage: python3 adc.py BUCKET OBJECT; prints one "name: value" line
# per finding, exits 1 on the first failure.
import sys

import google.auth
import google.auth.transport.requests


def main(bucket, obj):
    creds, project = google.auth.default()
    kind = type(creds).__module__ + "." + type(creds).__name__
    print("credentials: " + kind)
    print("project: " + str(project))
    session = google.auth.transport.requests.AuthorizedSession(creds)
    base = "https://storage.googleapis.com/storage/v1/b/" + bucket + "/o"
    r = session.get(base)
    print("list: %d %s" % (r.status_code, r.text))
    r.raise_for_status()
    print("names: " + " ".join(i["name"] for i in r.json().get("items", [])))
    r = session.get(base + "/" + obj, params={"alt": "media"})
    print("media: %d %r" % (r.status_code, r.content))
    r.raise_for_status()


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except Exception as e:  # report, then fail: the test reads this line
        print("error: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
