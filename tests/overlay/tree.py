# Python changing the image tree (run by tests/e2e_overlay.rs), in the
# sandbox with R unset, natively with R set to an unpacked copy.
import os, shutil, sqlite3, sys
R = os.environ.get("R", "")
os.makedirs(R + "/root/w", exist_ok=True)
with open(R + "/etc/app.conf", "w") as f:
    f.write("v=1\n")
os.replace(R + "/etc/app.conf", R + "/etc/app2.conf")
os.rename(R + "/etc/passwd", R + "/etc/passwd.old")
print(sorted(n for n in os.listdir(R + "/etc") if n not in ("hosts", "hostname", "resolv.conf")))
shutil.copytree(R + "/usr/lib/python3.11/email", R + "/root/w/email")
print(len(os.listdir(R + "/root/w/email")), sorted(os.listdir(R + "/root/w/email/mime"))[:3])
shutil.rmtree(R + "/usr/lib/python3.11/xml")
print(os.path.exists(R + "/usr/lib/python3.11/xml"))
# POSIX record locks (fcntl F_SETLK) are not in the sandbox yet: the
# database goes without locking, which one process does not need.
uri = "file:" + R + "/root/w/t.db?vfs=unix-none"
db = sqlite3.connect(uri, uri=True)
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t (v) values (?)", [("x" * i,) for i in range(500)])
db.commit()
print(db.execute("select count(*), sum(length(v)) from t").fetchone())
db.close()
db = sqlite3.connect(uri, uri=True)
print(db.execute("select v from t where k = 3").fetchone())
st = os.stat(R + "/root/w/t.db")
print(st.st_size > 0, oct(st.st_mode & 0o777))
with open(R + "/usr/bin/hello.sh", "w") as f:
    f.write("#!/bin/sh\necho hi from usr\n")
os.chmod(R + "/usr/bin/hello.sh", 0o755)
os.utime(R + "/usr/bin/hello.sh", (1000000000, 1000000000))
print(os.stat(R + "/usr/bin/hello.sh").st_mtime)
fd = os.open(R + "/root/w/big", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.posix_fallocate(fd, 0, 1 << 20)
os.fsync(fd)
os.close(fd)
print(os.path.getsize(R + "/root/w/big"))
try:
    os.open(R + "/root/w/big", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    print("exists")
with open(R + "/etc/group", "a") as f:
    f.write("extra:x:9:\n")
print(open(R + "/etc/group").read().splitlines()[-1])
