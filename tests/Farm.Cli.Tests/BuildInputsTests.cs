using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The ways into and out of <c>farm build</c> that docker buildx has (issue 18, part 4): <c>--iidfile</c>,
/// <c>--metadata-file</c>, <c>-q</c>, a Dockerfile or a context tar on standard input, git and tarball URL contexts
/// served on loopback, named contexts, and the build-wide RUN settings (<c>--add-host</c>, <c>--network</c>,
/// <c>--ulimit</c>, <c>--shm-size</c>), each run as a user types it on the local farm.
/// </summary>
public sealed class BuildInputsTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    private const string Base = BuildFixture.Base;

    [Fact]
    public async Task Iidfile_and_metadata_file_hold_the_images_config_and_manifest_digests()
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN echo {Guid.NewGuid():N} > /marker\n"));
        var iid = Path.Combine(fixture.Directory, "iid-" + Guid.NewGuid().ToString("N")[..8]);
        var metadata = iid + ".json";

        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "io-meta:1", "-t", "io-meta:2", "--iidfile", iid, "--metadata-file", metadata, context));

        var inspect = JsonNode.Parse(Ok(await fixture.Farm("inspect", "io-meta:1")).Stdout)!.AsArray()[0]!;
        var id = (string)inspect["Id"]!;
        Assert.Matches("^sha256:[0-9a-f]{64}$", id);
        Assert.Equal(id, File.ReadAllText(iid));
        var json = JsonNode.Parse(File.ReadAllText(metadata))!;
        Assert.Equal(id, (string?)json["containerimage.config.digest"]);
        Assert.Equal((string?)inspect["Digest"], (string?)json["containerimage.digest"]);
        Assert.Equal("io-meta:1,io-meta:2", (string?)json["image.name"]);
    }

    [Fact]
    public async Task Quiet_prints_only_the_image_id_and_errors_still_reach_stderr()
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN echo quiet-step-output-{Guid.NewGuid():N}\n"));

        var quiet = Ok(await fixture.Farm("build", "-q", "-t", "io-quiet:1", context));

        var id = (string)JsonNode.Parse(Ok(await fixture.Farm("inspect", "io-quiet:1")).Stdout)!.AsArray()[0]!["Id"]!;
        Assert.Equal(id + "\n", quiet.Stdout);
        Assert.DoesNotContain("quiet-step-output", quiet.Stderr, StringComparison.Ordinal);

        var failing = await fixture.Farm("build", "-q", fixture.Context(("Dockerfile", $"FROM {Base}\nRUN exit 3\n")));
        Assert.Equal(1, failing.ExitCode);
        Assert.Equal(string.Empty, failing.Stdout);
        Assert.Contains("farm: FARM4201: ", failing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Dockerfile_on_stdin_builds_with_the_context_named_or_with_none()
    {
        var marker = Guid.NewGuid().ToString("N");
        var context = fixture.Context(("note.txt", $"from the context {marker}\n"));
        var dest = Dest();

        Ok(await FarmStdin(Encoding.UTF8.GetBytes($"FROM {Base}\nCOPY note.txt /note.txt\n"), "build", "--progress", "plain", "-f", "-", "--output", $"type=local,dest={dest}", context));
        Assert.Equal($"from the context {marker}\n", File.ReadAllText(Path.Combine(dest, "note.txt")));

        var alone = Dest();
        Ok(await FarmStdin(Encoding.UTF8.GetBytes($"FROM {Base}\nRUN echo {marker} > /alone\n"), "build", "--progress", "plain", "--output", $"type=local,dest={alone}", "-"));
        Assert.Equal(marker + "\n", File.ReadAllText(Path.Combine(alone, "alone")));

        // Without a context, COPY has nothing to copy: not even the Dockerfile.
        var empty = await FarmStdin(Encoding.UTF8.GetBytes($"FROM {Base}\nCOPY Dockerfile /d\n"), "build", "--progress", "plain", "-");
        Assert.Equal(1, empty.ExitCode);
        Assert.Contains("FARM1204", empty.Stderr, StringComparison.Ordinal);

        var twice = await FarmStdin([], "build", "-f", "-", "-");
        Assert.Equal(1, twice.ExitCode);
        Assert.StartsWith("farm: FARM5067: ", twice.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("gzip")]
    [InlineData("bzip2")]
    [InlineData("xz")]
    public async Task A_context_tar_on_stdin_is_unpacked_with_its_Dockerfile(string compression)
    {
        var marker = Guid.NewGuid().ToString("N");
        var tar = Compress(Tar(("Dockerfile", $"FROM {Base}\nCOPY app/ /app/\nRUN cat /app/msg > /seen\n"), ("app/msg", $"{compression} {marker}\n")), compression);
        var dest = Dest();

        Ok(await FarmStdin(tar, "build", "--progress", "plain", "--output", $"type=local,dest={dest}", "-"));

        Assert.Equal($"{compression} {marker}\n", File.ReadAllText(Path.Combine(dest, "seen")));
    }

    [Fact]
    public async Task Stdin_that_is_no_tar_and_no_text_and_a_tar_escaping_its_root_are_refused()
    {
        var binary = await FarmStdin([0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x10], "build", "-");
        Assert.Equal(1, binary.ExitCode);
        Assert.StartsWith("farm: FARM5066: the build context from standard input is binary, and not a tar archive", binary.Stderr, StringComparison.Ordinal);

        var escape = await FarmStdin(Tar(("Dockerfile", $"FROM {Base}\n"), ("../../escaped-" + Guid.NewGuid().ToString("N"), "x")), "build", "-");
        Assert.Equal(1, escape.ExitCode);
        Assert.StartsWith("farm: FARM1220: ", escape.Stderr, StringComparison.Ordinal);
        Assert.Contains("would land outside the context", escape.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_git_context_is_built_at_a_tag_a_branch_and_a_commit_with_a_subdirectory()
    {
        var repo = Path.Combine(fixture.Directory, "repos", "app.git");
        var work = Path.Combine(fixture.Directory, "work-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(work, "svc"));
        await Git(work, "init", "-q", "-b", "main");
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "Dockerfile"), $"FROM {Base}\nCOPY version /version\n");
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), "one\n");
        await Git(work, "add", "-A");
        await Git(work, "commit", "-q", "-m", "one");
        await Git(work, "tag", "v1");
        var first = (await Git(work, "rev-parse", "HEAD")).Trim();
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), "two\n");
        await Git(work, "commit", "-q", "-am", "two");
        Directory.CreateDirectory(Path.GetDirectoryName(repo)!);
        await Git(fixture.Directory, "clone", "-q", "--bare", work, repo);

        await using var daemon = await GitDaemon.StartAsync(Path.GetDirectoryName(repo)!);
        var url = $"git://127.0.0.1:{daemon.Port}/app.git";

        foreach (var (reference, expected) in new[] { ("v1", "one\n"), ("main", "two\n"), (first, "one\n") })
        {
            var dest = Dest();
            Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}", $"{url}#{reference}:svc"));
            Assert.Equal(expected, File.ReadAllText(Path.Combine(dest, "version")));
        }

        var missing = await fixture.Farm("build", $"{url}#no-such-branch:svc");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith($"farm: FARM5065: cannot use the git context {url}#no-such-branch:svc: the repository has no branch or tag 'no-such-branch'", missing.Stderr, StringComparison.Ordinal);

        var subdir = await fixture.Farm("build", $"{url}#main:nowhere");
        Assert.Equal(1, subdir.ExitCode);
        Assert.StartsWith("farm: FARM5065: ", subdir.Stderr, StringComparison.Ordinal);
        Assert.Contains("'nowhere' is not a directory of the repository", subdir.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADD_of_a_git_source_adds_the_commit_its_ref_names_and_stays_cached_until_the_ref_moves()
    {
        var repos = Path.Combine(fixture.Directory, "add-repos-" + Guid.NewGuid().ToString("N")[..8]);
        var work = Path.Combine(fixture.Directory, "add-work-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(work, "svc"));
        await Git(work, "init", "-q", "-b", "main");
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), "one\n");
        await Git(work, "add", "-A");
        await Git(work, "commit", "-q", "-m", "one");
        await Git(work, "tag", "-a", "v1", "-m", "release one");
        var first = (await Git(work, "rev-parse", "HEAD")).Trim();
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), "two\n");
        await Git(work, "commit", "-q", "-am", "two");
        var bare = Path.Combine(repos, "lib.git");
        Directory.CreateDirectory(repos);
        await Git(fixture.Directory, "clone", "-q", "--bare", work, bare);
        await using var daemon = await GitDaemon.StartAsync(repos);
        var url = $"git://127.0.0.1:{daemon.Port}/lib.git";
        var context = fixture.Context(("Dockerfile", $"""
            FROM {Base}
            ADD --keep-git-dir=true {url}#v1 /kept
            ADD {url}#{first}:svc /pinned/
            ADD {url}#main /src
            """));

        var dest = Dest();
        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}", context));
        Assert.Equal("two\n", File.ReadAllText(Path.Combine(dest, "src", "svc", "version")));
        Assert.False(Directory.Exists(Path.Combine(dest, "src", ".git")), "ADD of a git source leaves .git out unless --keep-git-dir");
        Assert.Equal("one\n", File.ReadAllText(Path.Combine(dest, "kept", "svc", "version")));
        Assert.True(File.Exists(Path.Combine(dest, "kept", ".git", "HEAD")), "--keep-git-dir=true keeps .git");
        Assert.Equal("one\n", File.ReadAllText(Path.Combine(dest, "pinned", "version")));

        // Nothing moved: every ADD is a cache hit (keyed by the commit each ref names, not by the URL alone).
        var again = Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={Dest()}", context));
        Assert.Equal(3, Regex.Count(again.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));

        // main moves: its ADD (the last step) runs again and adds the new commit; the tag's and the commit's stay cached.
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), "three\n");
        await Git(work, "commit", "-q", "-am", "three");
        await Git(work, "push", "-q", bare, "main");
        var moved = Dest();
        var rebuilt = Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={moved}", context));
        Assert.Equal("three\n", File.ReadAllText(Path.Combine(moved, "src", "svc", "version")));
        Assert.Equal("one\n", File.ReadAllText(Path.Combine(moved, "kept", "svc", "version")));
        Assert.Equal(2, Regex.Count(rebuilt.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));

        var missing = await fixture.Farm("build", fixture.Context(("Dockerfile", $"FROM {Base}\nADD {url}#no-such-tag /x\n")));
        Assert.Equal(1, missing.ExitCode);
        Assert.True(Regex.IsMatch(missing.Stderr, @"^farm: FARM1230: \S*Dockerfile:2:1: ADD git://", RegexOptions.Multiline), missing.Stderr);
        Assert.Contains("no branch or tag 'no-such-tag'", missing.Stderr, StringComparison.Ordinal);

        // The farm never fetches over ssh with its own keys (no connection is tried: git refuses the transport).
        var ssh = await fixture.Farm("build", fixture.Context(("Dockerfile", $"FROM {Base}\nADD ssh://git@127.0.0.1:1/lib.git /x\n")));
        Assert.Equal(1, ssh.ExitCode);
        Assert.True(Regex.IsMatch(ssh.Stderr, @"^farm: FARM1230: \S*Dockerfile:2:1: ADD ssh://", RegexOptions.Multiline), ssh.Stderr);
        Assert.Contains("not allowed", ssh.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tarball_URL_and_a_Dockerfile_URL_are_fetched_and_an_unreachable_one_says_so()
    {
        var marker = Guid.NewGuid().ToString("N");
        var files = new Dictionary<string, byte[]>
        {
            ["/ctx.tar.gz"] = Compress(Tar(("Dockerfile", $"FROM {Base}\nCOPY msg /msg\n"), ("msg", $"tarball {marker}\n")), "gzip"),
            ["/Dockerfile"] = Encoding.UTF8.GetBytes($"FROM {Base}\nRUN echo {marker} > /from-url\n"),
        };
        await using var server = LoopbackFiles.Start(files);

        var dest = Dest();
        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}", $"{server.Url}/ctx.tar.gz"));
        Assert.Equal($"tarball {marker}\n", File.ReadAllText(Path.Combine(dest, "msg")));

        var text = Dest();
        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={text}", $"{server.Url}/Dockerfile"));
        Assert.Equal(marker + "\n", File.ReadAllText(Path.Combine(text, "from-url")));

        var notFound = await fixture.Farm("build", $"{server.Url}/missing.tar");
        Assert.Equal(1, notFound.ExitCode);
        Assert.StartsWith($"farm: FARM5063: cannot fetch the build context {server.Url}/missing.tar: the server answered 404", notFound.Stderr, StringComparison.Ordinal);

        var port = FreePort();
        var refused = await fixture.Farm("build", $"http://127.0.0.1:{port}/ctx.tar");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith($"farm: FARM5063: cannot fetch the build context http://127.0.0.1:{port}/ctx.tar: ", refused.Stderr, StringComparison.Ordinal);

        // A password in the URL is never shown.
        var secret = "pw-" + Guid.NewGuid().ToString("N");
        var withPassword = await fixture.Farm("build", $"http://farm:{secret}@127.0.0.1:{port}/ctx.tar");
        Assert.StartsWith($"farm: FARM5063: cannot fetch the build context http://***@127.0.0.1:{port}/ctx.tar: ", withPassword.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, withPassword.Stderr + withPassword.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_oci_layout_named_context_is_the_base_image_and_copy_source_of_that_name()
    {
        // An OCI layout made by the farm itself: an image exported with --output type=oci, unpacked.
        var marker = Guid.NewGuid().ToString("N");
        var source = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN echo {marker} > /from-layout\n"));
        var archive = Dest() + ".tar";
        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=oci,dest={archive}", source));
        var layoutDir = Directory.CreateDirectory(archive + ".d").FullName;
        await TarFile.ExtractToDirectoryAsync(archive, layoutDir, overwriteFiles: true);
        var manifest = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(layoutDir, "index.json")))!["manifests"]![0]!["digest"]!;
        var context = fixture.Context(("Dockerfile", "FROM base\nCOPY --from=tools /from-layout /copied\nRUN cat /from-layout /copied > /both\n"));
        var dest = Dest();

        Ok(await fixture.Farm("build", "--progress", "plain", "--build-context", $"base=oci-layout://{layoutDir}", "--build-context", $"tools=oci-layout://{layoutDir}@{manifest}", "--output", $"type=local,dest={dest}", context));

        Assert.Equal($"{marker}\n{marker}\n", File.ReadAllText(Path.Combine(dest, "both")));
        var wrong = await fixture.Farm("build", "--progress", "plain", "--build-context", $"base=oci-layout://{layoutDir}@sha256:{new string('b', 64)}", context);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("FARM1221: the build context 'base' (--build-context) cannot be used", wrong.Stderr, StringComparison.Ordinal);
        Assert.Contains("no image of its index.json has the digest or tag", wrong.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_docker_image_named_context_replaces_FROM_and_COPY_from_of_that_name()
    {
        var marker = Guid.NewGuid().ToString("N");
        var context = fixture.Context(("Dockerfile", $"FROM base-image\nCOPY --from=tools /bin/busybox /copied-busybox\nRUN echo {marker} > /m\n"));
        var dest = Dest();

        var refused = await fixture.Farm("build", "--progress", "plain", context);
        Assert.Equal(1, refused.ExitCode);

        Ok(await fixture.Farm("build", "--progress", "plain", "--build-context", $"base-image=docker-image://{Base}", "--build-context", $"tools=docker-image://{Base}", "--output", $"type=local,dest={dest}", context));
        Assert.Equal(marker + "\n", File.ReadAllText(Path.Combine(dest, "m")));
        Assert.Equal(new FileInfo("/bin/busybox").Length, new FileInfo(Path.Combine(dest, "copied-busybox")).Length);

        var layout = await fixture.Farm("build", "--build-context", "tools=oci-layout:///tmp/no-layout@sha256:" + new string('a', 64), context);
        Assert.Equal(1, layout.ExitCode);
        Assert.StartsWith("farm: FARM1221: the build context 'tools' (--build-context) cannot be used: oci-layout:///tmp/no-layout@sha256:", layout.Stderr, StringComparison.Ordinal);
        Assert.Contains("it is not an OCI image layout", layout.Stderr, StringComparison.Ordinal);

        var bad = await fixture.Farm("build", "--build-context", "tools=ftp://x", context);
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("farm: FARM5062: --build-context tools=ftp://x: the scheme", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_directory_named_context_is_what_COPY_from_that_name_reads_and_a_change_in_it_reruns_the_step()
    {
        var marker = Guid.NewGuid().ToString("N");
        var assets = fixture.Context(("logo.txt", $"logo {marker}\n"), ("skip.tmp", "ignored"), (".dockerignore", "*.tmp\n"));
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nCOPY --from=assets . /assets/\n"));
        var dest = Dest();

        Ok(await fixture.Farm("build", "--progress", "plain", "--build-context", $"assets={assets}", "--output", $"type=local,dest={dest}", context));
        Assert.Equal($"logo {marker}\n", File.ReadAllText(Path.Combine(dest, "assets", "logo.txt")));
        Assert.False(File.Exists(Path.Combine(dest, "assets", "skip.tmp")));

        File.WriteAllText(Path.Combine(assets, "logo.txt"), $"logo changed {marker}\n");
        var again = Dest();
        var rebuilt = Ok(await fixture.Farm("build", "--progress", "plain", "--build-context", $"assets={assets}", "--output", $"type=local,dest={again}", context));
        Assert.DoesNotContain("CACHED", rebuilt.Stderr, StringComparison.Ordinal);
        Assert.Equal($"logo changed {marker}\n", File.ReadAllText(Path.Combine(again, "assets", "logo.txt")));

        var from = await fixture.Farm("build", "--build-context", $"assets={assets}", fixture.Context(("Dockerfile", "FROM assets\n")));
        Assert.Equal(1, from.ExitCode);
        Assert.Contains("FARM1221: ", from.Stderr, StringComparison.Ordinal);
        Assert.Contains("FROM assets names the directory build context 'assets'", from.Stderr, StringComparison.Ordinal);

        var missing = await fixture.Farm("build", "--build-context", $"assets={assets}-missing", context);
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith($"farm: FARM1221: the build context 'assets' (--build-context) cannot be used: {assets}-missing is not a directory", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Add_host_ulimit_and_shm_size_are_what_RUN_sees()
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN cat /etc/hosts > /hosts && ulimit -Sn > /nofile-soft && ulimit -Hn > /nofile-hard && df -k /dev/shm | tail -n 1 > /shm && echo {Guid.NewGuid():N}\n"));
        var dest = Dest();

        Ok(await fixture.Farm("build", "--progress", "plain", "--add-host", "db.internal:10.1.2.3", "--add-host", "cache=10.1.2.4", "--ulimit", "nofile=1024:2048", "--shm-size", "128m", "--output", $"type=local,dest={dest}", context));

        var hosts = File.ReadAllText(Path.Combine(dest, "hosts"));
        Assert.Contains("10.1.2.3\tdb.internal\n", hosts, StringComparison.Ordinal);
        Assert.Contains("10.1.2.4\tcache\n", hosts, StringComparison.Ordinal);
        Assert.Equal("1024\n", File.ReadAllText(Path.Combine(dest, "nofile-soft")));
        Assert.Equal("2048\n", File.ReadAllText(Path.Combine(dest, "nofile-hard")));
        // df -k: filesystem, 1K-blocks, used, available, use%, mount point.
        Assert.Equal("131072", File.ReadAllText(Path.Combine(dest, "shm")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        // Another --add-host is another step: it runs again rather than hitting the cache.
        var other = await fixture.Farm("build", "--progress", "plain", "--add-host", "db.internal:10.9.9.9", "--ulimit", "nofile=1024:2048", "--shm-size", "128m", "--output", $"type=local,dest={Dest()}", context);
        Assert.Equal(0, other.ExitCode);
        Assert.DoesNotContain("CACHED", other.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Network_none_leaves_RUN_only_loopback_and_a_RUN_network_flag_still_wins()
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN ls /sys/class/net > /none && echo {Guid.NewGuid():N}\nRUN --network=default ls /sys/class/net > /default\n"));
        var dest = Dest();

        Ok(await fixture.Farm("build", "--progress", "plain", "--network", "none", "--output", $"type=local,dest={dest}", context));

        Assert.Equal("lo\n", File.ReadAllText(Path.Combine(dest, "none")));
        Assert.NotEqual("lo\n", File.ReadAllText(Path.Combine(dest, "default")));
    }

    [Fact]
    public async Task Network_host_asks_for_the_entitlement_itself_and_RUN_shares_the_machines_network()
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN readlink /proc/self/ns/net > /net && echo {Guid.NewGuid():N}\n"));
        var dest = Dest();

        Ok(await fixture.Farm("build", "--progress", "plain", "--network", "host", "--output", $"type=local,dest={dest}", context));

        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, File.ReadAllText(Path.Combine(dest, "net")).Trim());
    }

    [Theory]
    [InlineData("--ulimit", "nofile", "FARM5060")]
    [InlineData("--ulimit", "speed=1", "FARM5060")]
    [InlineData("--ulimit", "nofile=2048:1024", "FARM5060")]
    [InlineData("--add-host", "db.internal", "FARM5061")]
    [InlineData("--add-host", "db.internal:not-an-ip", "FARM5061")]
    [InlineData("--add-host", "gw:host-gateway", "FARM5061")]
    [InlineData("--build-context", "=docker-image://x", "FARM5062")]
    [InlineData("--shm-size", "lots", "FARM5068")]
    [InlineData("--network", "bridge", "FARM5068")]
    public async Task A_malformed_flag_is_refused_with_its_code_before_anything_runs(string flag, string value, string code)
    {
        var context = fixture.Context(("Dockerfile", $"FROM {Base}\nRUN echo never-runs\n"));

        var result = await fixture.Farm("build", "--progress", "plain", flag, value, context);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"farm: {code}: {flag} {value}", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("never-runs", result.Stderr, StringComparison.Ordinal);
    }

    private string Dest() => Path.Combine(fixture.Directory, "out-" + Guid.NewGuid().ToString("N")[..8]);

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private Task<CliProcess.Result> FarmStdin(byte[] stdin, params string[] args) => StdinCli.RunAsync(fixture.Env, stdin, args);

    internal static byte[] Tar(params (string Path, string Content)[] files)
    {
        using var buffer = new MemoryStream();
        using (var tar = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (path, content) in files)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)), Mode = (UnixFileMode)0b110_100_100 });
            }
        }

        return buffer.ToArray();
    }

    internal static byte[] Compress(byte[] tar, string compression)
    {
        switch (compression)
        {
            case "plain":
                return tar;
            case "gzip":
            {
                using var buffer = new MemoryStream();
                using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
                {
                    gzip.Write(tar);
                }

                return buffer.ToArray();
            }

            default:
            {
                // bzip2 and xz as their own commands write them.
                var start = new ProcessStartInfo(compression, "-c") { RedirectStandardInput = true, RedirectStandardOutput = true };
                using var process = Process.Start(start)!;
                var output = new MemoryStream();
                var copy = process.StandardOutput.BaseStream.CopyToAsync(output);
                process.StandardInput.BaseStream.Write(tar);
                process.StandardInput.Close();
                copy.GetAwaiter().GetResult();
                process.WaitForExit();
                return output.ToArray();
            }
        }
    }

    [Fact]
    public async Task A_fenced_git_checkout_checks_each_submodules_host_before_git_connects_to_it()
    {
        var root = Path.Combine(fixture.Directory, "fence-git-" + Guid.NewGuid().ToString("N")[..8]);
        var repos = Path.Combine(root, "repos");
        Directory.CreateDirectory(repos);
        await using var daemon = await GitDaemon.StartAsync(repos);
        // What a repository could name as a submodule: a service the fence refuses (here, one the test listens with).
        using var service = new TcpListener(IPAddress.Loopback, 0);
        service.Start();
        var servicePort = ((IPEndPoint)service.LocalEndpoint).Port;
        await MakeRepoAsync("sub", null);
        await MakeRepoAsync("top-ok", $"git://127.0.0.1:{daemon.Port}/sub.git");
        await MakeRepoAsync("top-bad", $"git://127.0.0.1:{servicePort}/sub.git");
        var fence = new Farm.Oci.Net.FetchFence((_, port, _) => ValueTask.FromResult(port == daemon.Port ? null : "not the test's git daemon"));

        var ok = Farm.Dockerfile.Context.GitSource.Parse($"git://127.0.0.1:{daemon.Port}/top-ok.git#main") with { Fence = fence };
        var checkout = await ok.CheckoutAsync(await ok.ResolveCommitAsync(CancellationToken.None), Path.Combine(root, "ok"), keepGitDir: false, CancellationToken.None);
        Assert.Equal("sub\n", await File.ReadAllTextAsync(Path.Combine(checkout, "sub", "name")));

        var bad = Farm.Dockerfile.Context.GitSource.Parse($"git://127.0.0.1:{daemon.Port}/top-bad.git#main") with { Fence = fence };
        var commit = await bad.ResolveCommitAsync(CancellationToken.None);
        var refused = await Assert.ThrowsAsync<Farm.Oci.Net.AddressRefusedException>(() => bad.CheckoutAsync(commit, Path.Combine(root, "bad"), keepGitDir: false, CancellationToken.None));
        Assert.Equal("not the test's git daemon", refused.Why);
        Assert.False(service.Pending(), "git connected to the submodule's refused host");

        async Task MakeRepoAsync(string name, string? submodule)
        {
            var work = Path.Combine(root, name);
            Directory.CreateDirectory(work);
            await Git(work, "init", "-q", "-b", "main");
            await File.WriteAllTextAsync(Path.Combine(work, "name"), name + "\n");
            if (submodule is not null)
            {
                await Git(work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", Path.Combine(repos, "sub.git"), "sub");
                await Git(work, "config", "-f", ".gitmodules", "submodule.sub.url", submodule);
            }

            await Git(work, "add", "-A");
            await Git(work, "commit", "-q", "-m", name);
            await Git(root, "clone", "-q", "--bare", work, Path.Combine(repos, name + ".git"));
        }
    }

    private static Task<string> Git(string directory, params string[] args) =>
        Tool.RunAsync("git", ["-C", directory, "-c", "user.name=farm", "-c", "user.email=farm@example.invalid", .. args]);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary><c>git daemon</c> on 127.0.0.1, serving the repositories under a directory.</summary>
    internal sealed class GitDaemon(Process process, int port) : IAsyncDisposable
    {
        public int Port { get; } = port;

        public static async Task<GitDaemon> StartAsync(string basePath)
        {
            var port = FreePort();
            var start = new ProcessStartInfo("git") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", $"--port={port}", $"--base-path={basePath}", basePath })
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start)!;
            await Wait.UntilAsync(
                () =>
                {
                    try
                    {
                        using var client = new TcpClient();
                        client.Connect(IPAddress.Loopback, port);
                        return true;
                    }
                    catch (SocketException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                () => $"git daemon to listen on 127.0.0.1:{port}");
            return new GitDaemon(process, port);
        }

        public async ValueTask DisposeAsync()
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    /// <summary>An HTTP server on 127.0.0.1 answering GET with the bytes of a path, 404 otherwise.</summary>
    private sealed class LoopbackFiles(HttpListener listener, Task serving, string url) : IAsyncDisposable
    {
        public string Url { get; } = url;

        public static LoopbackFiles Start(Dictionary<string, byte[]> files)
        {
            var port = FreePort();
            var url = $"http://127.0.0.1:{port}";
            var listener = new HttpListener();
            listener.Prefixes.Add(url + "/");
            listener.Start();
            var serving = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                    {
                        return;
                    }

                    if (files.TryGetValue(context.Request.Url!.AbsolutePath, out var body))
                    {
                        context.Response.ContentLength64 = body.Length;
                        await context.Response.OutputStream.WriteAsync(body);
                    }
                    else
                    {
                        context.Response.StatusCode = 404;
                    }

                    context.Response.Close();
                }
            });
            return new LoopbackFiles(listener, serving, url);
        }

        public async ValueTask DisposeAsync()
        {
            // Close alone: Stop then Close removes the listener twice, and the second removal binds the port again
            // (HttpListenerException "Address already in use" when another socket holds it by then).
            listener.Close();
            await serving;
        }
    }
}

/// <summary>Runs farm with bytes on its standard input (a tar is no string, which <see cref="CliProcess"/> takes).</summary>
internal static class StdinCli
{
    public static async Task<CliProcess.Result> RunAsync(IReadOnlyDictionary<string, string> environment, byte[] stdin, params string[] args)
    {
        var start = new ProcessStartInfo(CliProcess.Command[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in CliProcess.Command.Skip(1).Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(environment))
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.StandardInput.BaseStream.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command may refuse before it reads its input (FARM5067).
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return new CliProcess.Result(process.ExitCode, await stdout, await stderr);
    }
}
