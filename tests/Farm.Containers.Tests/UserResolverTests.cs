using Farm.Containers.Sandbox;

namespace Farm.Containers.Tests;

public sealed class UserResolverTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "fwu" + Guid.NewGuid().ToString("N")[..8]);

    public UserResolverTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc", "passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000:App:/home/app:/bin/sh\nsvc:x:1001:1001::/srv:/bin/false\n");
        File.WriteAllText(Path.Combine(_root, "etc", "group"),
            "root:x:0:\nstaff:x:50:app,svc\nwheel:x:10:app\napp:x:1000:\nsvc:x:1001:\n");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("", 0u, 0u, "/root")]
    [InlineData("root", 0u, 0u, "/root")]
    [InlineData("app:staff", 1000u, 50u, "/home/app")]
    [InlineData("app:10", 1000u, 10u, "/home/app")]
    [InlineData("1000", 1000u, 1000u, "/home/app")]
    [InlineData("1000:50", 1000u, 50u, "/home/app")]
    [InlineData("4242", 4242u, 0u, "/")]
    [InlineData("4242:4343", 4242u, 4343u, "/")]
    [InlineData("svc:app", 1001u, 1000u, "/srv")]
    public void Resolves_names_and_numbers(string spec, uint uid, uint gid, string home)
    {
        var user = UserResolver.Resolve(_root, spec);

        Assert.Equal((uid, gid, home), (user.Uid, user.Gid, user.Home));
    }

    [Fact]
    public void A_user_without_a_group_gets_its_supplementary_groups()
    {
        Assert.Equal([50u, 10u], UserResolver.Resolve(_root, "app").AdditionalGids);
        Assert.Equal([50u, 10u], UserResolver.Resolve(_root, "1000").AdditionalGids);
    }

    [Fact]
    public void An_explicit_group_replaces_the_supplementary_groups()
    {
        Assert.Empty(UserResolver.Resolve(_root, "app:app").AdditionalGids);
    }

    [Theory]
    [InlineData("ghost", "user 'ghost'")]
    [InlineData("app:ghosts", "group 'ghosts'")]
    [InlineData("-1", "user '-1'")]
    public void An_unknown_name_is_a_clear_error(string spec, string expected)
    {
        var e = Assert.Throws<UnknownUserException>(() => UserResolver.Resolve(_root, spec));

        Assert.Equal("FARM3001", e.Code);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_image_without_passwd_still_accepts_root_and_numbers()
    {
        File.Delete(Path.Combine(_root, "etc", "passwd"));

        Assert.Equal(0u, UserResolver.Resolve(_root, "").Uid);
        Assert.Equal((7u, 8u), (UserResolver.Resolve(_root, "7:8").Uid, UserResolver.Resolve(_root, "7:8").Gid));
        Assert.Throws<UnknownUserException>(() => UserResolver.Resolve(_root, "app"));
    }

    [Fact]
    public void A_passwd_symlink_pointing_outside_the_rootfs_is_resolved_inside_it()
    {
        // An absolute link is relative to the image's root, as it would be after chroot; never the host's /etc.
        Directory.CreateDirectory(Path.Combine(_root, "alt"));
        File.WriteAllText(Path.Combine(_root, "alt", "passwd"), "inside:x:77:77::/in:/bin/sh\n");
        File.Delete(Path.Combine(_root, "etc", "passwd"));
        File.CreateSymbolicLink(Path.Combine(_root, "etc", "passwd"), "../../../../../alt/passwd");

        Assert.Equal(77u, UserResolver.Resolve(_root, "inside").Uid);
        Assert.Equal(_root + "/alt/passwd", RootfsPath.Resolve(_root, "/etc/passwd"));
        Assert.Equal(_root + "/x", RootfsPath.Resolve(_root, "/../../x"));
    }
}
