package org.vsbridge.console;

/**
 * The size of a console port (VIRTIO_CONSOLE_F_SIZE) as one immutable value, so a reader never sees the columns
 * of one resize with the rows of another. 0 means not set.
 */
public record ConsoleSize(int cols, int rows) {

    /** No size set (what a console port starts with). */
    public static final ConsoleSize UNSET = new ConsoleSize(0, 0);

    /** @throws IllegalArgumentException when a field does not fit the 16 bits the virtio config and RESIZE give it */
    public ConsoleSize {
        if (cols < 0 || cols > 0xFFFF || rows < 0 || rows > 0xFFFF) {
            throw new IllegalArgumentException("console size " + cols + "x" + rows + " does not fit 16 bits");
        }
    }

    /** A size was set (either field non-zero). */
    public boolean isSet() {
        return cols != 0 || rows != 0;
    }
}
