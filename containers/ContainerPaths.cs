namespace Farm.Containers;

/// <summary>
/// The layout of one container's directory, <c>STATE/containers/ID</c>. Names are one or two letters because the
/// overlay mount options, which hold several of these paths, are limited to a page.
/// </summary>
/// <param name="Directory">The container's directory.</param>
internal readonly record struct ContainerPaths(string Directory)
{
    /// <summary><see cref="ContainerState"/>, as <see cref="ContainerStore"/> saves it.</summary>
    public string State => Path.Combine(Directory, "config.json");

    /// <summary>The overlay upperdir: the container's own changes, what <c>farm commit</c> writes as a layer.</summary>
    public string Upper => Path.Combine(Directory, "u");

    /// <summary>overlayfs's scratch directory for <see cref="Upper"/>.</summary>
    public string Work => Path.Combine(Directory, "w");

    /// <summary>The merged root file system, mounted while the container runs.</summary>
    public string Merged => Path.Combine(Directory, "m");

    /// <summary>The init layer: the mount points runc needs, made once over the image (Docker's <c>-init</c> layer).</summary>
    public string Init => Path.Combine(Directory, "i");

    /// <summary>overlayfs's scratch directory while the init layer is made.</summary>
    public string InitWork => Path.Combine(Directory, "iw");

    /// <summary>An empty lower directory for an image without layers.</summary>
    public string EmptyLower => Path.Combine(Directory, "e");

    /// <summary>The runc bundle (its <c>config.json</c> and runc's log).</summary>
    public string Bundle => Path.Combine(Directory, "b");

    /// <summary>The runtime spec in <see cref="Bundle"/>.</summary>
    public string RuntimeSpec => Path.Combine(Bundle, "config.json");

    /// <summary>The container's /etc/hosts, bind-mounted.</summary>
    public string Hosts => Path.Combine(Directory, "hosts");

    /// <summary>The container's /etc/resolv.conf, bind-mounted.</summary>
    public string ResolvConf => Path.Combine(Directory, "resolv.conf");

    /// <summary>The container's /etc/hostname, bind-mounted.</summary>
    public string Hostname => Path.Combine(Directory, "hostname");

    /// <summary>The base image's config, as stored, for commit.</summary>
    public string ImageConfig => Path.Combine(Directory, "image-config.json");

    /// <summary>The base image's manifest, as stored, for commit.</summary>
    public string ImageManifest => Path.Combine(Directory, "image-manifest.json");

    /// <summary>What the container wrote, for <c>farm logs</c>.</summary>
    public string Log => Path.Combine(Directory, "log");
}
