"""The console in a real browser: headless Chromium (Debian's `chromium`, driven through
`chromium-driver` by Selenium) against the real daemon. Login, bucket creation and settings, a
20 MiB upload through the page (multipart, with its progress bar) compared byte for byte through
boto3 and through the page's own download, the object page's share link, a user without
permission seeing an error instead of data, an object named <script> shown rather than run, the
IAM page's JSON editor, the disks page; then, from a test page on another origin, a CORS
preflight and a POST Object form submitted by the browser. A screenshot of each page is saved
under tmp/artifacts/console/."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config

from tests.conftest import DaemonProc

from .conftest import add_user, console_url

pytestmark = pytest.mark.slow
BUCKET = "browser-bucket"
BIG = 20 * 1024 * 1024


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except Exception as exc:  # the page is still changing under us
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def s3_of(d: DaemonProc, ak: str | None = None, sk: str | None = None) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=ak or d.access_key,
                        aws_secret_access_key=sk or d.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


class Page:
    def __init__(self, driver: Any, d: DaemonProc, artifacts: Path) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.d, self.artifacts, self.By = driver, d, artifacts, By

    def el(self, css: str, timeout: float = 30.0) -> Any:
        return wait_for(lambda: self.driver.find_element(self.By.CSS_SELECTOR, css), timeout, css)

    def text(self, css: str) -> str:
        return str(self.el(css).text)

    def go(self, hash_: str, ready: str) -> None:
        """Show the page `hash_` afresh (the old one cleared first, so `ready` is the new one's)."""
        self.driver.execute_script("""
            document.getElementById("page").replaceChildren();
            if (location.hash === arguments[0]) window.dispatchEvent(new HashChangeEvent("hashchange"));
            else location.hash = arguments[0];""", hash_)
        self.el(ready)

    def shot(self, name: str) -> None:
        assert self.driver.save_screenshot(str(self.artifacts / f"{name}.png"))

    def login(self, ak: str, sk: str) -> None:
        self.driver.get(console_url(self.d))
        self.el("#login-access").send_keys(ak)
        self.el("#login-secret").send_keys(sk)
        self.el("#login-submit").click()
        wait_for(lambda: self.driver.find_element(self.By.ID, "who").text, 30, "login")

    def logout(self) -> None:
        self.el("#logout").click()
        wait_for(lambda: self.driver.find_element(self.By.ID, "login").is_displayed(), 30, "logged out")

    def no_alert(self) -> None:
        from selenium.common.exceptions import NoAlertPresentException

        with pytest.raises(NoAlertPresentException):
            self.driver.switch_to.alert.text  # noqa: B018


@pytest.fixture(scope="module")
def page(driver: Any, cd: DaemonProc, artifacts: Path) -> Page:
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(artifacts)})
    return Page(driver, cd, artifacts)


def test_login_buckets_and_settings(page: Page, cd: DaemonProc) -> None:
    page.driver.get(console_url(cd))
    page.el("#login-form")
    page.shot("01-login")
    page.el("#login-access").send_keys(cd.access_key)
    page.el("#login-secret").send_keys("wrong secret")
    page.el("#login-submit").click()
    wait_for(lambda: "wrong" in page.text("#flash"), 30, "the refusal")
    page.login(cd.access_key, cd.secret_key)
    page.el("#buckets")
    page.el("#new-bucket").send_keys(BUCKET)
    page.el("#create-bucket button").click()
    wait_for(lambda: BUCKET in [a.text for a in page.driver.find_elements(page.By.CSS_SELECTOR, "a.bucket-link")],
             30, "the new bucket in the list")
    page.shot("02-buckets")
    assert BUCKET in [b["Name"] for b in s3_of(cd).list_buckets()["Buckets"]]

    page.go(f"#/bucket/{BUCKET}", "#versioning")
    page.el("#versioning + button").click()  # Enabled is preselected
    wait_for(lambda: "Enabled" in page.text("#versioning-status"), 30, "versioning on")
    assert s3_of(cd).get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    page.shot("03-bucket-settings")


def test_upload_20_mib_through_the_page(page: Page, cd: DaemonProc, tmp_path: Path) -> None:
    data = os.urandom(BIG)
    src = tmp_path / "big-upload.bin"
    src.write_bytes(data)
    page.go(f"#/browse/{BUCKET}/", "#upload-file")
    page.el("#upload-file").send_keys(str(src))
    page.el("#upload-submit").click()
    wait_for(lambda: "uploaded" in page.text("#upload-status"), 180, "the upload")
    assert float(page.el("#upload-progress").get_attribute("value")) == 1.0
    wait_for(lambda: "big-upload.bin" in [a.text for a in page.driver.find_elements(page.By.CSS_SELECTOR,
                                                                                    "a.object-link")], 30, "listing")
    page.shot("04-object-browser")
    got = s3_of(cd).get_object(Bucket=BUCKET, Key="big-upload.bin")
    assert got["Body"].read() == data  # byte for byte, through boto3
    assert got["ETag"].endswith('-3"')  # three 8 MiB parts: the page's multipart upload

    page.go(f"#/object/{BUCKET}/big-upload.bin", "#object-meta")
    assert str(BIG) in page.text("#object-meta")
    page.el("#share-make").click()
    url = wait_for(lambda: page.el("#share-url").get_attribute("value"), 30, "the share link")
    import requests

    assert hashlib.sha256(requests.get(url, timeout=60).content).digest() == hashlib.sha256(data).digest()
    page.shot("05-object")
    # the page's own download (a presigned link with a Content-Disposition: attachment)
    target = page.artifacts / "big-upload.bin"
    target.unlink(missing_ok=True)
    page.el("#object-download").click()
    wait_for(lambda: target.exists() and target.stat().st_size == BIG, 120, "the download")
    assert target.read_bytes() == data
    target.unlink()


def test_object_tags_and_versions(page: Page, cd: DaemonProc) -> None:
    page.go(f"#/object/{BUCKET}/big-upload.bin", "#tags")
    assert "(latest)" in page.text("#versions")
    page.el("#tags .tag-key").send_keys("team")
    page.el("#tags .tag-value").send_keys("<ops>")
    page.el("#tags ~ button:not(.secondary)").click()
    wait_for(lambda: "Tags saved" in page.text("#flash"), 30, "the tags saved")
    assert s3_of(cd).get_object_tagging(Bucket=BUCKET, Key="big-upload.bin")["TagSet"] == [
        {"Key": "team", "Value": "<ops>"}]


def test_an_upload_resumes_after_a_page_reload(page: Page, cd: DaemonProc, tmp_path: Path) -> None:
    """The page keeps a multipart upload's id in localStorage: choosing the same file again
    after a reload completes that upload, sending only the parts it lacks."""
    data = os.urandom(2 * 8 * 1024 * 1024 + 1000)
    src = tmp_path / "resumed.bin"
    src.write_bytes(data)
    s3 = s3_of(cd)
    # what an interrupted page left: an upload with its first part, and its id in localStorage
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="resumed.bin")["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key="resumed.bin", UploadId=upload_id, PartNumber=1, Body=data[:8 << 20])
    page.driver.refresh()
    page.el("#who")
    wait_for(lambda: page.text("#who"), 30, "the session after the reload")
    page.go(f"#/browse/{BUCKET}/", "#upload-file")
    modified = int(src.stat().st_mtime * 1000)
    page.driver.execute_script("localStorage.setItem(arguments[0], arguments[1])",
                               f"stowage-upload:{BUCKET}/resumed.bin:resumed.bin:{len(data)}:{modified}", upload_id)
    page.el("#upload-file").send_keys(str(src))
    page.el("#upload-submit").click()
    wait_for(lambda: "uploaded" in page.text("#upload-status"), 120, "the resumed upload")
    assert s3.get_object(Bucket=BUCKET, Key="resumed.bin")["Body"].read() == data
    # the upload the page found was the one completed: none is left open
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert page.driver.execute_script("return localStorage.length") == 0


def test_names_are_shown_not_run(page: Page, cd: DaemonProc) -> None:
    names = ["<script>.txt", "<img src=x onerror=alert(2)>.txt"]
    for name in names:
        s3_of(cd).put_object(Bucket=BUCKET, Key=name, Body=b"x", Metadata={"note": "<b onmouseover=alert(3)>hi</b>"})
    page.go(f"#/browse/{BUCKET}/", "#objects")
    wait_for(lambda: set(names) <= {a.text for a in page.driver.find_elements(page.By.CSS_SELECTOR, "a.object-link")},
             30, "the names as text")
    page.no_alert()
    assert not page.driver.find_elements(page.By.CSS_SELECTOR, "#objects script, #objects img, #objects b")
    page.go(f"#/object/{BUCKET}/" + quote(names[1], safe=""), "#object-meta")
    wait_for(lambda: "<b onmouseover=alert(3)>hi</b>" in page.text("#object-meta"), 30, "the metadata as text")
    page.no_alert()


def test_iam_page_and_policy_editor(page: Page, cd: DaemonProc) -> None:
    page.go("#/iam", "#users")
    editor = page.el("#policy-json")
    editor.clear()
    editor.send_keys('{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}')
    wait_for(lambda: "Effect must be Allow or Deny" in page.text("#policy-json-status"), 10, "the editor's check")
    page.el("#new-policy-name").send_keys("browser-policy")
    page.el("#create-policy button").click()
    wait_for(lambda: "Fix the policy" in page.text("#flash"), 10, "refused before sending")
    editor.clear()
    editor.send_keys(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    wait_for(lambda: "valid policy" in page.text("#policy-json-status"), 10, "valid")
    page.el("#create-policy button").click()
    wait_for(lambda: "browser-policy" in page.text("#policies"), 30, "the new policy")
    page.el("#new-user").send_keys("browser-user")
    page.el("#create-user button").click()
    wait_for(lambda: "browser-user" in page.text("#users"), 30, "the new user")
    page.shot("06-users-and-policies")


def test_disks_page_and_a_disk_action(page: Page, cd: DaemonProc) -> None:
    page.go("#/disks", "#disks")
    wait_for(lambda: "ok" in page.text("#disks"), 30, "disk states")
    assert "Usable capacity" in page.text("#capacity")
    assert "n/a" in page.text("#disks")  # SMART: the test's disks are directories
    assert "scrub:" in page.text("#services")
    page.el("#disks-check").click()  # the action `stowage disks` runs as disks.check, as the console's user
    wait_for(lambda: "check: done" in page.text("#flash"), 60, "the disk check")
    entry = json.loads((cd.data_dir / "log" / "audit.log").read_text().splitlines()[-1])
    assert (entry["source"], entry["action"], entry["outcome"]) == ("console", "disks.check", "ok")
    assert entry["who"].endswith(":root") and entry["before"]["disks"]
    page.shot("07-disks")


def test_add_a_disk_through_the_page(page: Page, cd: DaemonProc, loops: Callable[[], str]) -> None:
    """`stowage disks add` from the disks page: a blank loop device, confirmed by typing its path."""
    dev = loops()
    page.go("#/disks", "#disks")
    page.el("#disk-add summary").click()
    row = "#cand-" + re.sub(r"[^A-Za-z0-9]", "_", dev)
    assert "blank" in page.text(row)
    page.el(row + " .add-confirm").send_keys(dev)
    page.shot("07b-disks-add")
    page.el(row + " .add-disk").click()
    wait_for(lambda: "add: done" in page.text("#flash"), 120, "the disk add")
    entry = json.loads((cd.data_dir / "log" / "audit.log").read_text().splitlines()[-1])
    assert (entry["source"], entry["action"], entry["outcome"]) == ("console", "disks.add", "ok")
    disk_id = entry["after"]["result"]["disk_id"]
    wait_for(lambda: disk_id in page.text("#disks"), 30, "the new disk in the table")


def test_bucket_lifecycle_replication_and_notification_settings(page: Page, cd: DaemonProc) -> None:
    page.go(f"#/bucket/{BUCKET}", "#lifecycle-panel")
    assert "None set" in page.text("#replication-rules") and "None set" in page.text("#notification-rules")
    page.el("#lifecycle-panel summary").click()
    page.el("#lifecycle-xml").send_keys(
        "<LifecycleConfiguration><Rule><ID>old-logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Days>30</Days></Expiration></Rule></LifecycleConfiguration>")
    page.el("#lifecycle-save").click()
    wait_for(lambda: "expire after 30 days" in page.text("#lifecycle-rules"), 30, "the lifecycle rule")
    assert "prefix logs/" in page.text("#lifecycle-rules")
    rules = s3_of(cd).get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [(r["ID"], r["Expiration"]["Days"]) for r in rules] == [("old-logs", 30)]
    entry = json.loads((cd.data_dir / "log" / "audit.log").read_text().splitlines()[-1])
    assert (entry["source"], entry["action"], entry["target"]) == ("console", "PutBucketLifecycleConfiguration", BUCKET)
    page.shot("08-bucket-lifecycle")


def test_status_page_version_and_charts(page: Page) -> None:
    from appliance import __version__

    page.go("#/status", "#version-line")
    assert page.text("#version-line") == f"Stowage {__version__}"
    assert page.text("#formats-status").startswith("On-disk formats: current")
    assert "metadata DB" in page.text("#formats")
    page.el("#capacity-chart")
    page.el("#requests-chart")
    page.shot("09-status-charts")


def test_durability_page(page: Page) -> None:
    page.go("#/durability", "#durability-nines")
    assert "nines" in page.text("#durability-nines") and "default" in page.text("#durability-pools")
    assert "MTTDL" in page.text("#page")
    page.shot("10-durability")


def test_a_user_without_permission_sees_an_error(page: Page, cd: DaemonProc) -> None:
    ak, sk = add_user(cd, "browser-nobody")
    page.logout()
    page.login(ak, sk)
    page.go(f"#/browse/{BUCKET}/", "#page-error")
    assert "AccessDenied" in page.text("#page-error")
    assert not page.driver.find_elements(page.By.CSS_SELECTOR, "a.object-link")
    assert "big-upload.bin" not in page.driver.page_source
    page.shot("11-denied")
    for where in ("#/disks", "#/status", "#/durability"):
        page.go(where, "#page-error")
        assert "AccessDenied" in page.text("#page-error"), where
    assert not page.driver.find_elements(page.By.CSS_SELECTOR, "#disks, #version-line, #durability-nines")
    page.logout()


# --- another origin: CORS preflights and a POST Object form --------------------------------------


@pytest.fixture(scope="module")
def other_origin() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A tiny web server on another port (so another origin) serving the test pages we put in."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.partition("?")[0], b"not found")
            self.send_response(200 if self.path.partition("?")[0] in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


CORS_PAGE = """<!doctype html><title>cors</title><pre id="out">running</pre><script>
const out = document.getElementById("out");
async function run() {
  const results = {};
  try {
    const r = await fetch(%(put_url)s, {method: "PUT", body: "from the browser",
                                        headers: {"Content-Type": "text/x-test"}});
    results.put = {status: r.status, etag: r.headers.get("ETag")};
  } catch (e) { results.put = {blocked: String(e)}; }
  try {
    const r = await fetch(%(denied_url)s, {method: "DELETE"});
    results.denied = {status: r.status};
  } catch (e) { results.denied = {blocked: String(e)}; }
  out.textContent = JSON.stringify(results);
  document.title = "done";
}
run();
</script>"""


def test_cors_preflight_from_a_browser_page(page: Page, cd: DaemonProc, other_origin: tuple[str, dict[str, bytes]]
                                            ) -> None:
    origin, pages = other_origin
    s3 = s3_of(cd)
    s3.create_bucket(Bucket="browser-cors")
    s3.put_bucket_cors(Bucket="browser-cors", CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [origin], "AllowedMethods": ["PUT", "GET"], "AllowedHeaders": ["content-type"],
        "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "browser-cors", "Key": "from-page.txt",
                                                              "ContentType": "text/x-test"}, ExpiresIn=600)
    denied_url = s3.generate_presigned_url("delete_object", Params={"Bucket": "browser-cors", "Key": "from-page.txt"},
                                           ExpiresIn=600)
    pages["/cors.html"] = (CORS_PAGE % {"put_url": json.dumps(put_url), "denied_url": json.dumps(denied_url)}).encode()
    page.driver.get(origin + "/cors.html")
    wait_for(lambda: page.driver.title == "done", 60, "the page's requests")
    results = json.loads(page.text("#out"))
    page.shot("12-cors-page")
    # the preflight for PUT with Content-Type passed, the PUT ran and its ETag was readable
    assert results["put"]["status"] == 200, results
    assert results["put"]["etag"] == f'"{hashlib.md5(b"from the browser").hexdigest()}"'
    assert s3.get_object(Bucket="browser-cors", Key="from-page.txt")["Body"].read() == b"from the browser"
    # DELETE is in no rule: the browser's preflight was refused, so the request never ran
    assert "blocked" in results["denied"], results
    s3.head_object(Bucket="browser-cors", Key="from-page.txt")


FORM_PAGE = """<!doctype html><title>upload</title>
<form id="f" action="%(action)s" method="post" enctype="multipart/form-data">%(fields)s
<input type="file" name="file" id="file"><button id="go" type="submit">Upload</button></form>"""


def test_post_object_from_a_real_html_form(page: Page, cd: DaemonProc, other_origin: tuple[str, dict[str, bytes]],
                                           tmp_path: Path) -> None:
    from html import escape

    origin, pages = other_origin
    s3 = s3_of(cd)
    s3.create_bucket(Bucket="browser-form")
    post = s3.generate_presigned_post(
        "browser-form", "forms/${filename}",
        Fields={"success_action_redirect": origin + "/done", "x-amz-meta-source": "html-form"},
        Conditions=[["starts-with", "$key", "forms/"], {"success_action_redirect": origin + "/done"},
                    {"x-amz-meta-source": "html-form"}, ["content-length-range", 1, 10 << 20]],
        ExpiresIn=600)
    fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in post["fields"].items())
    pages["/form.html"] = (FORM_PAGE % {"action": escape(post["url"]), "fields": fields}).encode()
    pages["/done"] = b"<!doctype html><title>uploaded</title><p id='done'>thanks</p>"
    data = os.urandom(300_000)
    src = tmp_path / "form-file.bin"
    src.write_bytes(data)
    page.driver.get(origin + "/form.html")
    page.el("#file").send_keys(str(src))
    page.shot("13-post-form")
    page.el("#go").click()
    wait_for(lambda: page.driver.title == "uploaded", 60, "the redirect after the upload")
    assert "key=forms%2Fform-file.bin" in page.driver.current_url and "bucket=browser-form" in page.driver.current_url
    got = s3.get_object(Bucket="browser-form", Key="forms/form-file.bin")
    assert got["Body"].read() == data and got["Metadata"] == {"source": "html-form"}
