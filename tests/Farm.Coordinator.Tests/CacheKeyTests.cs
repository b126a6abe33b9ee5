using System.Security.Cryptography;
using System.Text;
using Farm.Dockerfile.Planning;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The rule kaniko and buildah users most often report broken (docs/architecture.md, "Cache keys"): equal inputs give equal
/// keys, and a changed input changes exactly the keys of the steps that see it and everything built on them.
/// </summary>
public sealed class CacheKeyTests
{
    private const string Alpine = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string Alpine2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private const string Busybox = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    private const string MultiStage = """
        FROM alpine:3.20 AS build
        WORKDIR /src
        COPY go.mod ./
        RUN echo deps
        COPY src/ ./src/
        RUN echo build
        LABEL stage=build

        FROM busybox AS final
        COPY --from=build /src/out /app
        COPY static /static
        RUN echo done
        """;

    private static readonly Dictionary<string, string> Images = new(StringComparer.Ordinal)
    {
        ["alpine:3.20"] = Alpine,
        ["busybox"] = Busybox,
        ["busybox:latest"] = Busybox,
    };

    private static ContextIndex Context(params (string Path, string Content)[] files) => Context(files.Select(f => (f.Path, f.Content, 0x1a4)).ToArray());

    private static ContextIndex Context(params (string Path, string Content, int Mode)[] files)
    {
        var entries = new SortedDictionary<string, ContextEntry>(StringComparer.Ordinal);
        foreach (var (path, content, mode) in files)
        {
            var parts = path.Split('/');
            for (var i = 1; i < parts.Length; i++)
            {
                var dir = string.Join('/', parts[..i]);
                entries.TryAdd(dir, new ContextEntry(dir, ContextEntryType.Directory, 0x1ed, 0, null, null));
            }

            var bytes = Encoding.UTF8.GetBytes(content);
            entries[path] = new ContextEntry(path, ContextEntryType.File, mode, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)), null);
        }

        return new ContextIndex([.. entries.Values]);
    }

    private static readonly (string, string)[] BaseFiles =
    [
        ("go.mod", "module x"),
        ("src/main.go", "package main"),
        ("src/util/u.go", "package util"),
        ("static/index.html", "<html>"),
        ("README.md", "read me"),
    ];

    private static CacheKeyPlan Plan(
        string dockerfile, ContextIndex? index = null, Dictionary<string, string>? args = null, Func<string, string>? resolve = null, string salt = "")
    {
        var graph = BuildGraph.Create(dockerfile, options: new BuildGraphOptions { BuildArgs = args ?? [] });
        return CacheKeyPlanner.Compute(graph, index ?? Context(BaseFiles), resolve ?? (name => Images[name]), new CacheKeyOptions { Salt = salt });
    }

    private static string[] Keys(CacheKeyPlan plan) => [.. plan.Steps.Select(s => s.Key)];

    /// <summary>Ids of the steps whose keys differ between two plans of the same graph shape.</summary>
    private static string[] Changed(CacheKeyPlan a, CacheKeyPlan b)
    {
        Assert.Equal(a.Steps.Select(s => s.StepId), b.Steps.Select(s => s.StepId));
        return [.. a.Steps.Zip(b.Steps).Where(p => p.First.Key != p.Second.Key).Select(p => p.First.StepId)];
    }

    [Fact]
    public void Same_inputs_give_the_same_keys_and_every_key_is_distinct()
    {
        var a = Plan(MultiStage);
        var b = Plan(MultiStage);
        Assert.Equal(Keys(a), Keys(b));
        Assert.Equal(8, a.Steps.Count); // build: WORKDIR COPY RUN COPY RUN; final: COPY COPY RUN (LABEL makes no layer)
        Assert.Equal(Keys(a).Length, Keys(a).Distinct().Count());
        Assert.All(a.Steps, s => Assert.Matches("^sha256:[0-9a-f]{64}$", s.Key));
        Assert.All(a.Steps, s => Assert.True(s.Cacheable));
    }

    [Fact]
    public void SOURCE_DATE_EPOCH_changes_every_layer_key_and_its_absence_none()
    {
        var args = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        var graph = BuildGraph.Create(MultiStage, options: new BuildGraphOptions { BuildArgs = args });
        Assert.DoesNotContain(graph.Warnings, w => w.Code == BuildGraphErrorCodes.UnusedBuildArgs); // a predefined arg, as in BuildKit
        var plain = CacheKeyPlanner.Compute(graph, Context(BaseFiles), name => Images[name], new CacheKeyOptions());
        var dated = CacheKeyPlanner.Compute(graph, Context(BaseFiles), name => Images[name], new CacheKeyOptions { SourceDateEpoch = SourceDateEpoch.FromBuildArgs(args) });
        var later = CacheKeyPlanner.Compute(graph, Context(BaseFiles), name => Images[name], new CacheKeyOptions { SourceDateEpoch = DateTimeOffset.FromUnixTimeSeconds(1700000001) });

        Assert.Equal(Keys(Plan(MultiStage)), Keys(plain));
        Assert.Equal(plain.Steps.Select(s => s.StepId), Changed(plain, dated));
        Assert.Equal(plain.Steps.Select(s => s.StepId), Changed(dated, later));
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("99999999999999")]
    public void A_SOURCE_DATE_EPOCH_that_is_not_whole_seconds_is_refused_with_FARM1320(string value)
    {
        var error = Assert.Throws<BuildGraphException>(() => SourceDateEpoch.FromBuildArgs(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = value }));
        Assert.StartsWith("FARM1320: ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
        Assert.Null(SourceDateEpoch.FromBuildArgs(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "" }));
    }

    [Fact]
    public void Keys_chain_each_step_on_the_one_before()
    {
        var plan = Plan(MultiStage);
        foreach (var stage in plan.Stages)
        {
            var steps = plan.Steps.Where(s => s.StageIndex == stage.StageIndex).ToList();
            Assert.Equal(stage.BaseKey, steps[0].ParentKey);
            for (var i = 1; i < steps.Count; i++)
            {
                Assert.Equal(steps[i - 1].Key, steps[i].ParentKey);
            }

            Assert.Equal(steps[^1].Key, stage.FinalKey);
        }
    }

    [Fact]
    public void Changing_a_copied_file_changes_that_copy_and_everything_after_it_including_dependent_stages()
    {
        var before = Plan(MultiStage);
        var files = BaseFiles.Select(f => f.Item1 == "src/util/u.go" ? (f.Item1, "package util // changed") : f).ToArray();
        var after = Plan(MultiStage, Context(files));

        // s0/1 WORKDIR, s0/2 COPY go.mod, s0/3 RUN deps keep their keys; s0/4 COPY src/ and all later change,
        // and so does all of the final stage that copies from build.
        Assert.Equal(["s0/4", "s0/5", "s1/1", "s1/2", "s1/3"], Changed(before, after));
    }

    [Fact]
    public void Changing_a_file_only_the_final_stage_copies_leaves_the_build_stage_alone()
    {
        var before = Plan(MultiStage);
        var files = BaseFiles.Select(f => f.Item1 == "static/index.html" ? (f.Item1, "<html>new") : f).ToArray();
        Assert.Equal(["s1/2", "s1/3"], Changed(before, Plan(MultiStage, Context(files))));
    }

    [Fact]
    public void A_file_no_copy_selects_changes_no_key_and_nor_does_adding_one()
    {
        var before = Plan(MultiStage);
        var edited = BaseFiles.Select(f => f.Item1 == "README.md" ? (f.Item1, "rewritten") : f).ToArray();
        Assert.Empty(Changed(before, Plan(MultiStage, Context(edited))));
        Assert.Empty(Changed(before, Plan(MultiStage, Context([.. BaseFiles, ("docs/new.md", "x")]))));
    }

    [Fact]
    public void Mode_of_a_copied_file_is_part_of_the_key()
    {
        var before = Plan(MultiStage);
        var files = BaseFiles.Select(f => (f.Item1, f.Item2, f.Item1 == "go.mod" ? 0x1ed : 0x1a4)).ToArray();
        Assert.Equal(["s0/2", "s0/3", "s0/4", "s0/5", "s1/1", "s1/2", "s1/3"], Changed(before, Plan(MultiStage, Context(files))));
    }

    [Fact]
    public void A_new_file_under_a_copied_directory_changes_the_key()
    {
        var before = Plan(MultiStage);
        var after = Plan(MultiStage, Context([.. BaseFiles, ("src/extra.go", "package main")]));
        Assert.Equal(["s0/4", "s0/5", "s1/1", "s1/2", "s1/3"], Changed(before, after));
    }

    [Fact]
    public void Wildcards_and_excludes_select_what_the_worker_selects()
    {
        const string df = """
            FROM alpine:3.20
            COPY --exclude=*_test.go *.go /app/
            """;
        var files = new[] { ("main.go", "a"), ("main_test.go", "t"), ("lib.go", "l"), ("notes.txt", "n") };
        var before = Plan(df, Context(files));
        Assert.Empty(Changed(before, Plan(df, Context(files.Select(f => f.Item1 == "main_test.go" ? (f.Item1, "t2") : f).ToArray()))));
        Assert.Empty(Changed(before, Plan(df, Context(files.Select(f => f.Item1 == "notes.txt" ? (f.Item1, "n2") : f).ToArray()))));
        Assert.Equal(["s0/1"], Changed(before, Plan(df, Context(files.Select(f => f.Item1 == "lib.go" ? (f.Item1, "l2") : f).ToArray()))));
    }

    [Fact]
    public void Dockerignored_files_are_not_in_the_index_so_they_cannot_change_a_key()
    {
        // The index is what the packer kept; COPY . selects all of it.
        const string df = "FROM alpine:3.20\nCOPY . /app\n";
        var a = Plan(df, Context(("a.txt", "1")));
        var b = Plan(df, Context(("a.txt", "1")));
        var c = Plan(df, Context(("a.txt", "2")));
        Assert.Equal(Keys(a), Keys(b));
        Assert.NotEqual(Keys(a), Keys(c));
    }

    [Fact]
    public void Build_arg_changes_the_run_steps_in_its_scope_and_not_the_steps_before_its_declaration()
    {
        const string df = """
            FROM alpine:3.20
            RUN echo before
            ARG VERSION=1
            COPY go.mod /
            RUN echo does-not-use-it
            WORKDIR /w
            """;
        var one = Plan(df, args: new() { ["VERSION"] = "1" });
        var two = Plan(df, args: new() { ["VERSION"] = "2" });

        // s0/1 RUN before: not in scope. s0/3 COPY uses no ARG and keeps its key. s0/4 RUN: every ARG in scope is
        // in its env, used or not. s0/5 WORKDIR follows the changed parent.
        Assert.Equal(["s0/4", "s0/5"], Changed(one, two));
    }

    [Fact]
    public void Env_changes_later_runs_but_label_and_cmd_change_no_layer()
    {
        const string base1 = "FROM alpine:3.20\nRUN echo a\nENV A=1\nRUN echo b\n";
        const string base2 = "FROM alpine:3.20\nRUN echo a\nENV A=2\nRUN echo b\n";
        Assert.Equal(["s0/3"], Changed(Plan(base1), Plan(base2)));

        const string label1 = "FROM alpine:3.20\nRUN echo a\nLABEL v=1\nCMD [\"a\"]\nRUN echo b\n";
        const string label2 = "FROM alpine:3.20\nRUN echo a\nLABEL v=2\nCMD [\"b\"]\nRUN echo b\n";
        Assert.Empty(Changed(Plan(label1), Plan(label2)));
    }

    [Fact]
    public void User_and_workdir_are_part_of_a_run_key()
    {
        const string a = "FROM alpine:3.20\nRUN echo a\nUSER nobody\nRUN id\n";
        const string b = "FROM alpine:3.20\nRUN echo a\nUSER root\nRUN id\n";
        Assert.Equal(["s0/3"], Changed(Plan(a), Plan(b)));
    }

    [Fact]
    public void Base_image_digest_changes_every_step_of_the_stage_and_the_tag_never_counts()
    {
        var before = Plan(MultiStage);
        var moved = Plan(MultiStage, resolve: name => name == "alpine:3.20" ? Alpine2 : Images[name]);
        Assert.Equal(["s0/1", "s0/2", "s0/3", "s0/4", "s0/5", "s1/1", "s1/2", "s1/3"], Changed(before, moved));

        // Another tag for the same digest: same keys.
        var retagged = Plan(MultiStage.Replace("FROM busybox AS", "FROM busybox:latest AS", StringComparison.Ordinal));
        Assert.Empty(Changed(before, retagged));
    }

    [Fact]
    public void The_salt_changes_every_key()
    {
        var a = Plan(MultiStage);
        var b = Plan(MultiStage, salt: "2024-poisoned");
        Assert.Equal(a.Steps.Count, Changed(a, b).Length);
        Assert.NotEqual(a.Stages[0].BaseKey, b.Stages[0].BaseKey);
    }

    [Fact]
    public void Copy_from_a_stage_follows_that_stages_key()
    {
        var before = Plan(MultiStage);
        var after = Plan(MultiStage.Replace("RUN echo build", "RUN echo build2", StringComparison.Ordinal));
        Assert.Equal(["s0/5", "s1/1", "s1/2", "s1/3"], Changed(before, after));
    }

    [Fact]
    public void Copy_from_an_image_follows_its_digest()
    {
        const string df = "FROM alpine:3.20\nCOPY --from=busybox /bin/busybox /bin/\nRUN echo x\n";
        var a = Plan(df);
        var b = Plan(df, resolve: name => name == "busybox" ? Alpine2 : Images[name]);
        Assert.Equal(["s0/1", "s0/2"], Changed(a, b));
    }

    [Fact]
    public void Scratch_has_a_fixed_key()
    {
        const string df = "FROM scratch\nCOPY go.mod /\n";
        var a = Plan(df, resolve: _ => throw new InvalidOperationException("scratch needs no resolution"));
        Assert.Equal(a.Stages[0].BaseKey, Plan("FROM scratch\nCOPY static /s\n").Stages[0].BaseKey);
        Assert.True(a.Steps[0].Cacheable);
    }

    [Fact]
    public void On_scratch_a_copy_is_shared_by_every_platform_and_a_run_is_not()
    {
        // COPY a binary into scratch, then RUN it: the copied layer is the same for both platforms, what the RUN makes
        // depends on the platform it runs on (an arm64 build must never reuse the amd64 run's layer).
        const string df = "FROM scratch AS tools\nCOPY go.mod /bin/tool\nRUN [\"/bin/tool\"]\n\nFROM tools\nRUN [\"/bin/tool\", \"again\"]\n";
        CacheKeyPlan For(string platform) => CacheKeyPlanner.Compute(
            BuildGraph.Create(df, options: new BuildGraphOptions { Platform = platform }),
            Context(BaseFiles),
            _ => throw new InvalidOperationException("scratch needs no resolution"),
            new CacheKeyOptions());

        var amd64 = For("linux/amd64");
        var arm64 = For("linux/arm64");
        Assert.Equal(["s0/2", "s1/1"], Changed(amd64, arm64));
        Assert.Equal(Keys(amd64), Keys(For("linux/amd64")));
    }

    [Fact]
    public void A_run_with_a_secret_an_ssh_agent_or_a_cache_is_keyed_by_its_tenant_and_nothing_else_is()
    {
        // Tenant B must never take (or join) the layer tenant A's step made with A's token or A's cache: B could then
        // read what only A may, by building the same Dockerfile.
        const string df = """
            FROM alpine:3.20
            COPY go.mod /src/
            RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null
            RUN --mount=type=cache,target=/root/.cache echo cached
            RUN --mount=type=ssh echo ssh
            RUN --mount=type=bind,target=/ctx echo bound
            RUN echo plain
            """;
        CacheKeyPlan For(string? tenant) => CacheKeyPlanner.Compute(
            BuildGraph.Create(df), Context(BaseFiles), name => Images[name], new CacheKeyOptions { Tenant = tenant });

        var none = For(null);
        Assert.Equal(Keys(Plan(df)), Keys(none));
        Assert.Equal(["s0/2", "s0/3", "s0/4", "s0/5", "s0/6"], Changed(none, For("acme")));
        Assert.Equal(["s0/2", "s0/3", "s0/4", "s0/5", "s0/6"], Changed(For("acme"), For("globex")));
        Assert.Equal(Keys(For("acme")), Keys(For("acme")));

        // Steps without such a mount stay shared by every tenant.
        const string shared = "FROM alpine:3.20\nRUN --mount=type=bind,target=/ctx echo bound\nRUN --mount=type=tmpfs,target=/t echo plain\n";
        Assert.Equal(
            Keys(CacheKeyPlanner.Compute(BuildGraph.Create(shared), Context(BaseFiles), name => Images[name], new CacheKeyOptions { Tenant = "acme" })),
            Keys(CacheKeyPlanner.Compute(BuildGraph.Create(shared), Context(BaseFiles), name => Images[name], new CacheKeyOptions())));
    }

    [Fact]
    public void Add_of_a_url_without_checksum_is_not_cacheable_and_neither_is_anything_on_top()
    {
        const string df = """
            FROM alpine:3.20 AS dl
            RUN echo first
            ADD https://example.com/tool.tgz /tmp/
            RUN echo after

            FROM alpine:3.20
            COPY --from=dl /tmp/tool.tgz /
            """;
        var plan = Plan(df);
        Assert.True(plan.Find("s0/1")!.Cacheable);
        var add = plan.Find("s0/2")!;
        Assert.False(add.Cacheable);
        Assert.Contains("--checksum", add.NotCacheableReason, StringComparison.Ordinal);
        Assert.False(plan.Find("s0/3")!.Cacheable);
        Assert.False(plan.Find("s1/1")!.Cacheable);
    }

    [Fact]
    public void Add_of_a_url_with_checksum_is_cacheable_and_the_checksum_is_in_the_key()
    {
        const string df = "FROM alpine:3.20\nADD --checksum=sha256:{0} https://example.com/tool.tgz /tmp/\n";
        var a = Plan(string.Format(null, df, new string('a', 64)));
        var b = Plan(string.Format(null, df, new string('b', 64)));
        Assert.True(a.Steps[0].Cacheable);
        Assert.NotEqual(a.Steps[0].Key, b.Steps[0].Key);
    }

    [Fact]
    public void An_unpinned_base_image_gives_keys_that_are_not_cacheable()
    {
        var plan = Plan(MultiStage, resolve: name => name);
        Assert.All(plan.Steps, s => Assert.False(s.Cacheable));
        Assert.Contains("unpinned", plan.Steps[0].NotCacheableReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_copy_source_missing_from_the_context_is_reported()
    {
        var e = Assert.Throws<BuildContextException>(() => Plan("FROM alpine:3.20\nCOPY nope.txt /\n"));
        Assert.Equal("FARM1204", e.Code);
        var outside = Assert.Throws<BuildContextException>(() => Plan("FROM alpine:3.20\nCOPY ../etc/passwd /\n"));
        Assert.Equal("FARM1203", outside.Code);
    }

    [Fact]
    public void Run_bind_mount_from_the_context_makes_the_mounted_files_inputs()
    {
        const string df = "FROM alpine:3.20\nRUN --mount=type=bind,source=src,target=/src make\n";
        var before = Plan(df);
        Assert.Equal(["s0/1"], Changed(before, Plan(df, Context(BaseFiles.Select(f => f.Item1 == "src/main.go" ? (f.Item1, "x") : f).ToArray()))));
        Assert.Empty(Changed(before, Plan(df, Context(BaseFiles.Select(f => f.Item1 == "go.mod" ? (f.Item1, "x") : f).ToArray()))));
    }

    [Fact]
    public void Run_bind_mount_from_a_stage_is_keyed_by_the_stages_content_and_cache_and_secret_mounts_by_their_spec_only()
    {
        static string Df(string deps, string cache) =>
            $"FROM alpine:3.20 AS deps\nRUN {deps}\nFROM alpine:3.20\nRUN --mount=type=bind,from=deps,source=/out,target=/in --mount=type=cache,id={cache},target=/c --mount=type=secret,id=tok make\n";
        var before = Plan(Df("make-deps v1", "go"));

        Assert.Equal(["s0/1", "s1/1"], Changed(before, Plan(Df("make-deps v2", "go"))));
        Assert.Equal(["s1/1"], Changed(before, Plan(Df("make-deps v1", "pip"))));
        // Nothing but the spec enters a key: the same Dockerfile plans the same keys whatever a cache or secret holds.
        Assert.Empty(Changed(before, Plan(Df("make-deps v1", "go"))));
    }

    [Fact]
    public void The_key_format_is_pinned()
    {
        // A golden value: if this changes, every cache entry in every farm is orphaned. Bump
        // CacheKeyWriter.FormatVersion on purpose, then update the value here.
        using var w = new CacheKeyWriter();
        w.Add("salt", "").Add("instruction", "FROM").Add("base", "scratch");
        var scratch = w.Finish();
        Assert.Equal(scratch, Plan("FROM scratch\nCOPY go.mod /\n").Stages[0].BaseKey);
        Assert.Equal(ExpectedScratchKey(), scratch);
    }

    // Computed independently of CacheKeyWriter, from the format its documentation describes.
    private static string ExpectedScratchKey()
    {
        var buffer = new MemoryStream();
        foreach (var field in new[] { "farm-cache-key/v1", "salt", "", "instruction", "FROM", "base", "scratch" })
        {
            var bytes = Encoding.UTF8.GetBytes(field);
            buffer.Write([(byte)(bytes.Length >> 24), (byte)(bytes.Length >> 16), (byte)(bytes.Length >> 8), (byte)bytes.Length]);
            buffer.Write(bytes);
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(buffer.ToArray()));
    }
}
