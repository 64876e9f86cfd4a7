# Changes the image tree everywhere (run by tests/e2e_overlay.rs): in the
# sandbox with R unset, natively with R set to an unpacked copy of the image.
set -e
R=${R:-}
mkdir -p $R/root
echo 'x:x:5:5::/:/bin/sh' >> $R/etc/passwd; tail -1 $R/etc/passwd
printf 'data\n' > $R/usr/bin/newtool; chmod 755 $R/usr/bin/newtool; stat -c '%A %s %h' $R/usr/bin/newtool
printf '#!/bin/bash\necho patched\n' > $R/usr/bin/true2; chmod +x $R/usr/bin/true2; $R/usr/bin/true2
cp -a $R/usr/lib/python3.11/json $R/root/json
mv $R/root/json $R/root/json2; ls $R/root/json2 | wc -l
mv $R/usr/lib/python3.11/json $R/usr/lib/python3.11/json_moved; ls $R/usr/lib/python3.11/json_moved | wc -l
ls -d $R/usr/lib/python3.11/json* | sed "s|$R/|/|g"
rm -r $R/usr/lib/python3.11/email; ls $R/usr/lib/python3.11 | wc -l
rm $R/usr/bin/seq; ls $R/usr/bin/seq 2>&1 | sed "s|$R/|/|g" || true
ln $R/etc/passwd $R/etc/passwd.hard; stat -c '%h' $R/etc/passwd $R/etc/passwd.hard
echo more >> $R/etc/passwd.hard; tail -1 $R/etc/passwd
ln -s ../usr/bin/bash $R/etc/sh-link; readlink $R/etc/sh-link; stat -L -c %F $R/etc/sh-link
mkfifo $R/root/fifo; stat -c %F $R/root/fifo; (echo through-fifo > $R/root/fifo &); cat $R/root/fifo
chmod 600 $R/etc/group; stat -c %a $R/etc/group
chown 5:6 $R/etc/group; stat -c '%u:%g' $R/etc/group
touch -d '2001-02-03 04:05:06 UTC' $R/etc/group; stat -c %Y $R/etc/group
python3 -B -c "import os; os.truncate('$R/data/fruit', 3)"; cat $R/data/fruit; echo
rmdir $R/data 2>&1 | sed "s|$R/|/|g" || true
rm $R/data/fruit; rmdir $R/data; ls -d $R/data 2>&1 | sed "s|$R/|/|g" || true
mkdir $R/data; ls -A $R/data | wc -l
find $R/usr $R/etc $R/root -xdev | sed "s|^$R/|/|" | grep -v '^/etc/\(hosts\|hostname\|resolv.conf\)$' | sort > $R/tmp/list
md5sum < $R/tmp/list; wc -l < $R/tmp/list
tar czf $R/root/py.tgz -C $R/usr/lib python3.11
mkdir $R/root/x; tar xzf $R/root/py.tgz -C $R/root/x
diff -r --no-dereference $R/usr/lib/python3.11 $R/root/x/python3.11 && echo same-tree
find $R/root/x -type f -printf '%s %P\n' | sort -k2 | md5sum
echo done
