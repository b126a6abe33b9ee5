namespace Farm.Oci.IO;

/// <summary>What statx(2) says of a path, without following a final symlink.</summary>
public readonly record struct FileStat(
    uint Mode,
    uint Uid,
    uint Gid,
    uint Nlink,
    ulong Inode,
    long Size,
    long MtimeSeconds,
    uint MtimeNanoseconds,
    uint RdevMajor,
    uint RdevMinor,
    uint DevMajor,
    uint DevMinor)
{
    /// <summary>When the inode last changed (content, mode, owner, links): what a stat cache compares with mtime.</summary>
    public long CtimeSeconds { get; init; }

    /// <summary>The nanoseconds of <see cref="CtimeSeconds"/>.</summary>
    public uint CtimeNanoseconds { get; init; }

    public uint Type => Mode & TypeMask;

    public uint Permissions => Mode & 0xFFF;

    public bool IsRegularFile => Type == Regular;

    public bool IsDirectory => Type == Directory;

    public bool IsSymlink => Type == Symlink;

    /// <summary>A character device; overlayfs whiteouts are 0/0 ones.</summary>
    public bool IsCharDevice => Type == CharDevice;

    /// <summary>The device the file lives on, as one number (major in the high half): compare, don't decode.</summary>
    public ulong Device => ((ulong)DevMajor << 32) | DevMinor;

    public const uint TypeMask = 0xF000;
    public const uint Fifo = 0x1000;
    public const uint CharDevice = 0x2000;
    public const uint Directory = 0x4000;
    public const uint BlockDevice = 0x6000;
    public const uint Regular = 0x8000;
    public const uint Symlink = 0xA000;
    public const uint Socket = 0xC000;
}
