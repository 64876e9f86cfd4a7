/* mapcopyup FILE: mappings of an image file across its copy-up (FILE is
 * "hello, world\n" in the image). A mapping made before the copy-up keeps
 * the image's bytes, as on overlayfs; mappings made after it, even through
 * the read-only descriptor opened before, see the copied-up file and its
 * later writes. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int ro = open(argv[1], O_RDONLY);
    char *before = mmap(0, 4096, PROT_READ, MAP_PRIVATE, ro, 0);
    if (ro < 0 || before == MAP_FAILED) {
        perror("mapcopyup");
        return 1;
    }
    printf("before: %.5s\n", before);
    int rw = open(argv[1], O_RDWR);
    pwrite(rw, "HELLO", 5, 0);
    printf("mapped before the copy-up: %.5s\n", before);
    char *after = mmap(0, 4096, PROT_READ, MAP_PRIVATE, ro, 0);
    char *shared = mmap(0, 4096, PROT_READ, MAP_SHARED, rw, 0);
    printf("mapped after, read-only fd: %.5s\n", after);
    printf("mapped after, shared: %.5s\n", shared);
    pwrite(rw, "J", 1, 0);
    printf("after another write: %.5s %.5s\n", after, shared);
    return 0;
}
